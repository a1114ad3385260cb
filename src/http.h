/*
 * HTTP/1.1 protocol tables and message helpers shared by the programs
 * (RFC 9110, RFC 9112).
 */
#ifndef RELAY_HTTP_H
#define RELAY_HTTP_H

const char	*http_reason(int);

#endif
