/* Addresses given as text: "host:port", "[v6]:port", DNS names resolved. */
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"

static int
parse_port(const char *s, unsigned long *out)
{
	char *end;
	if (*s < '0' || *s > '9')
		return -1;
	unsigned long v = strtoul(s, &end, 10);
	if (*end != '\0' || v > 65535)
		return -1;
	*out = v;
	return 0;
}

int
mm_parse_hostport(const char *s, struct sockaddr_storage *out, socklen_t *len,
    int passive)
{
	char host[256];
	const char *colon = strrchr(s, ':');
	if (colon == NULL || colon == s || colon[1] == '\0' ||
	    (size_t)(colon - s) >= sizeof(host))
		return -1;
	size_t hl = (size_t)(colon - s);
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (host[0] == '[' && host[hl - 1] == ']') { /* [v6]:port */
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	unsigned long port;
	if (parse_port(colon + 1, &port) != 0)
		return -1;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
	    .ai_flags = passive ? AI_PASSIVE : 0}, *ai;
	if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
		return -1;
	memcpy(out, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}
