/* notify-flood N UID: N processes of user UID send datagrams to PID 1's notify socket
 * (/run/systemd/notify) as fast as they can, with blocking sends, so that its queue stays
 * full: what a wedged service manager, or any local user, does to a service that notifies.
 * For the systemd guest's notify-flood case only; built on the host, static. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1;
    int uid = argc > 2 ? atoi(argv[2]) : 0;
    for (int i = 1; i < n; i++)
        if (fork() == 0)
            break;
    if (uid != 0 && (setgid(uid) != 0 || setuid(uid) != 0)) {
        perror("notify-flood: setuid");
        return 1;
    }
    int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    strcpy(a.sun_path, "/run/systemd/notify");
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("notify-flood: connect /run/systemd/notify");
        return 1;
    }
    static const char msg[] = "STATUS=flood";
    for (;;)
        if (send(s, msg, sizeof msg - 1, 0) < 0)
            usleep(1000);
}
