/*
 * What the real connections (conn.c) and the simulated ones (simnet.c)
 * share: the configuration's defaults and the names of close reasons.
 */
#include "conn.h"

#include <string.h>

#include "frame.h"

void
mm_net_config_default(mm_net_config_t *c)
{
	memset(c, 0, sizeof(*c));
	c->network = "main";
	c->difficulty = MM_POW_DEFAULT;
	c->backend = MM_TLS_OPENSSL;
	c->max_frame = MM_FRAME_MAX_DEFAULT;
	c->handshake_timeout_ms = 5000;
	c->ping_interval_ms = 10000;
	c->idle_timeout_ms = 30000;
	c->write_cap = 1u << 20;
	c->hold_cap = 1u << 20;
	c->hold_total = 16u << 20;
	c->max_conns = 1024;
	c->max_conns_per_ip = 8;
	c->max_pending_per_ip = 4;
	c->conn_mailbox = 63;
}

const char *
mm_close_reason_name(int r)
{
	switch (r) {
	case MM_CLOSE_NORMAL: return "closed";
	case MM_WERR_BAD_FRAME: return "bad frame";
	case MM_WERR_BAD_MSGPACK: return "bad msgpack";
	case MM_WERR_UNKNOWN_CMD: return "unknown command";
	case MM_WERR_BAD_PARAMS: return "bad parameters";
	case MM_WERR_VERSION: return "protocol version";
	case MM_WERR_BAD_POW: return "short proof of work";
	case MM_WERR_BAD_ID: return "identity does not verify";
	case MM_WERR_BAD_SIG: return "bad signature";
	case MM_WERR_RATE: return "over budget";
	case MM_WERR_BANNED: return "banned";
	case MM_WERR_SHUTDOWN: return "peer shutting down";
	case MM_WERR_ORDER: return "message out of order";
	case MM_WERR_NETWORK: return "another network";
	case MM_WERR_FULL: return "no slot";
	case MM_CLOSE_TIMEOUT: return "handshake timeout";
	case MM_CLOSE_IDLE: return "idle timeout";
	case MM_CLOSE_SLOW: return "slow consumer";
	case MM_CLOSE_TLS: return "tls failure";
	case MM_CLOSE_IO: return "socket error";
	case MM_CLOSE_LIMIT: return "connection limit";
	case MM_CLOSE_SHUTDOWN: return "shutdown";
	default: return "?";
	}
}
