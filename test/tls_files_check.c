/* tls_files_check CA CERT KEY: handshake with these files on both sides, for
 * every backend pair, in private-network mode; the peer's CN must come out.
 * Used by pki_doc_test.sh to prove the commands in docs/OPERATIONS.md. */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tls.h"

static char *
slurp(const char *p)
{
	FILE *f = fopen(p, "r");
	if (f == NULL) {
		perror(p);
		exit(1);
	}
	char *b = calloc(1, 65536);
	size_t n = fread(b, 1, 65535, f);
	b[n] = 0;
	fclose(f);
	return b;
}

int
main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: tls_files_check CA CERT KEY\n");
		return 2;
	}
	char *ca = slurp(argv[1]), *crt = slurp(argv[2]), *key = slurp(argv[3]);
	int failed = 0;
	for (int a = MM_TLS_OPENSSL; a <= MM_TLS_MBEDTLS; a++) {
		for (int b = MM_TLS_OPENSSL; b <= MM_TLS_MBEDTLS; b++) {
			mm_tls_config_t cc = {.backend = a, .cert_pem = crt, .key_pem = key,
			    .ca_pem = ca}, sc = cc;
			sc.backend = b;
			char err[256] = "";
			mm_tls_ctx_t *x, *y;
			if (mm_tls_ctx_new(&cc, &x, err, sizeof(err)) != 0 ||
			    mm_tls_ctx_new(&sc, &y, err, sizeof(err)) != 0) {
				fprintf(stderr, "%s\n", err);
				return 1;
			}
			int sv[2];
			socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
			fcntl(sv[0], F_SETFL, O_NONBLOCK);
			fcntl(sv[1], F_SETFL, O_NONBLOCK);
			mm_tls_t *c = mm_tls_new(x, sv[0], 0), *s = mm_tls_new(y, sv[1], 1);
			int rc = -1, rs = -1;
			for (int k = 0; k < 2000 && !(rc == 0 && rs == 0); k++) {
				if (rc != 0)
					rc = mm_tls_handshake(c);
				if (rs != 0)
					rs = mm_tls_handshake(s);
				if (rc == MM_TLS_ERROR || rs == MM_TLS_ERROR)
					break;
				struct pollfd p[2] = {{sv[0], POLLIN, 0}, {sv[1], POLLIN, 0}};
				poll(p, 2, 10);
			}
			char cn[80] = "";
			int ok = rc == 0 && rs == 0 && mm_tls_peer_cn(s, cn, sizeof(cn)) > 0;
			printf("%s -> %s: %s %s\n", a == 1 ? "openssl" : "mbedtls",
			    b == 1 ? "openssl" : "mbedtls", ok ? "ok, CN" : "FAILED",
			    ok ? cn : rc == MM_TLS_ERROR ? mm_tls_error(c) : mm_tls_error(s));
			failed += !ok;
			mm_tls_free(c);
			mm_tls_free(s);
			close(sv[0]);
			close(sv[1]);
			mm_tls_ctx_free(x);
			mm_tls_ctx_free(y);
		}
	}
	free(ca);
	free(crt);
	free(key);
	return failed != 0;
}
