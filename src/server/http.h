/* http: the request handlers on libmicrohttpd (see http.c and conns.h). */
#ifndef VLLMC_SERVER_HTTP_H
#define VLLMC_SERVER_HTTP_H

#include <sys/socket.h>

#include "server/internal.h"

/* Listen on addr with n_threads event-loop threads; s->http must be started
 * (conns_start). NULL (errno set) if libmicrohttpd cannot start. */
struct MHD_Daemon *http_start(srv_server *s, const struct sockaddr *addr, int v6, int n_threads);

#endif
