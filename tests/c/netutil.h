/* Loopback listeners for the C tests that probe or connect to real sockets. */
#ifndef PEERLB_TEST_NETUTIL_H
#define PEERLB_TEST_NETUTIL_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* A listening socket on 127.0.0.1:port (0 = any); writes "127.0.0.1:port" into id. */
static int listen_on(int port, char *id, size_t cap) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((unsigned short)port);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 64) != 0) {
        perror("bind/listen");
        exit(2);
    }
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    snprintf(id, cap, "127.0.0.1:%d", ntohs(a.sin_port));
    return fd;
}

#endif
