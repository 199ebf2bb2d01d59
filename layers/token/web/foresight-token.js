// Foresight dual-token browser client: no dependencies, an ES module.
//
// Holds the session's active token and the pre-fetched one. Every request
// made with `client.fetch` carries `Authorization: Bearer <active>`. New
// tokens arrive in the `x-foresight-next-token` response header and over
// the WebSocket endpoint (`{"type":"token",...}` messages); the client
// switches to the pre-fetched token shortly before the active one expires,
// or when a request is answered 401 with `error="invalid_token"`: then the
// request is retried once with the new token (waiting briefly for a pushed
// token if none is held yet). A `{"type":"revoked"}` message clears both
// tokens and stops reconnecting.
//
// Request bodies must be replayable for the retry (a string, Blob,
// FormData, URLSearchParams or ArrayBuffer, not a ReadableStream). Across
// origins, the server must list `x-foresight-next-token` in
// `Access-Control-Expose-Headers` and the page's origin must be in the
// WebSocket endpoint's allow-list.
//
//   import { ForesightTokenClient } from "./foresight-token.js";
//   const client = new ForesightTokenClient({ token, wsUrl: "wss://api.example/foresight/ws" });
//   client.connect();
//   const response = await client.fetch("/api/orders");

const NEXT_TOKEN_HEADER = "x-foresight-next-token";

function claimsOf(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const padded = payload + "=".repeat((4 - (payload.length % 4)) % 4);
    return JSON.parse(atob(padded));
  } catch (_) {
    return {};
  }
}

function held(token) {
  const claims = claimsOf(token);
  return {
    token,
    jti: typeof claims.jti === "string" ? claims.jti : null,
    exp: Number.isFinite(claims.exp) ? claims.exp : Number.MAX_SAFE_INTEGER,
  };
}

export class ForesightTokenClient {
  /**
   * @param {object} options
   * @param {string} options.token        the first access token
   * @param {string} [options.wsUrl]      the WebSocket endpoint, e.g. wss://host/foresight/ws
   * @param {number} [options.skewSeconds=5]  switch this long before expiry
   * @param {number} [options.retryWaitMs=2000] how long a 401 waits for a pushed token
   * @param {number} [options.maxReconnects=10] WebSocket reconnections before giving up
   * @param {(event: object) => void} [options.onEvent] observer of switches, retries, deliveries
   */
  constructor(options) {
    this.active = held(options.token);
    this.next = null;
    this.wsUrl = options.wsUrl || null;
    this.skew = options.skewSeconds ?? 5;
    this.retryWaitMs = options.retryWaitMs ?? 2000;
    this.maxReconnects = options.maxReconnects ?? 10;
    this.onEvent = options.onEvent || (() => {});
    this.socket = null;
    this.revoked = false;
    this.closed = false;
    this.reconnects = 0;
    this.waiters = [];
  }

  /** Takes a delivered token; returns whether it was kept. */
  deliver(token, via = "api") {
    if (!token) return false;
    const candidate = held(token);
    const same = (h) => h && h.token === candidate.token;
    if (same(this.active) || same(this.next)) return false;
    if (!this.active) {
      this.active = candidate;
    } else if (candidate.exp >= (this.next ? this.next.exp : this.active.exp)) {
      // A replacement issued in the same second has the same exp.
      this.next = candidate;
    } else {
      return false;
    }
    this.onEvent({ type: "delivered", via, jti: candidate.jti, exp: candidate.exp });
    const waiters = this.waiters;
    this.waiters = [];
    waiters.forEach((resolve) => resolve());
    return true;
  }

  /** The Authorization value to send now, switching if the active token is about to expire. */
  authorization() {
    const now = Date.now() / 1000;
    if ((!this.active || this.active.exp <= now + this.skew) && this.next) {
      this.active = this.next;
      this.next = null;
      this.onEvent({ type: "switch", reason: "expiry", jti: this.active.jti });
    }
    return this.active ? `Bearer ${this.active.token}` : null;
  }

  async rejected(used) {
    if (this.active && `Bearer ${this.active.token}` === used) {
      if (!this.next && this.socket && !this.revoked) {
        await new Promise((resolve) => {
          this.waiters.push(resolve);
          setTimeout(resolve, this.retryWaitMs);
        });
      }
      if (!this.next) return null;
      this.active = this.next;
      this.next = null;
      this.onEvent({ type: "switch", reason: "invalid_token", jti: this.active.jti });
    }
    const now = this.active ? `Bearer ${this.active.token}` : null;
    return now !== used ? now : null;
  }

  /** `fetch` with the active token, deliveries and one transparent retry. */
  async fetch(input, init = {}) {
    const attempt = async (authorization) => {
      const headers = new Headers(init.headers || {});
      if (authorization) headers.set("authorization", authorization);
      const response = await fetch(input, { ...init, headers });
      this.deliver(response.headers.get(NEXT_TOKEN_HEADER), "header");
      return response;
    };
    const used = this.authorization();
    const response = await attempt(used);
    const challenge = response.headers.get("www-authenticate") || "";
    if (response.status === 401 && used && challenge.includes("invalid_token")) {
      const next = await this.rejected(used);
      if (next) {
        this.onEvent({ type: "retry", status: response.status });
        return attempt(next);
      }
    }
    return response;
  }

  /** Opens the WebSocket connection (the token travels as a subprotocol). */
  connect() {
    if (!this.wsUrl || this.closed || this.revoked || !this.active) return;
    const socket = new WebSocket(this.wsUrl, ["foresight.v1", `foresight.bearer.${this.active.token}`]);
    this.socket = socket;
    socket.onopen = () => {
      this.reconnects = 0;
      this.onEvent({ type: "connected" });
    };
    socket.onmessage = (message) => {
      let data;
      try {
        data = JSON.parse(message.data);
      } catch (_) {
        return;
      }
      if (data.type === "token") {
        this.deliver(data.token, "websocket");
      } else if (data.type === "revoked") {
        this.revoked = true;
        this.active = null;
        this.next = null;
        this.onEvent({ type: "revoked" });
      }
    };
    socket.onclose = () => {
      if (this.socket === socket) this.socket = null;
      if (this.closed || this.revoked || this.reconnects >= this.maxReconnects) return;
      const delay = Math.min(30000, 250 * 2 ** this.reconnects) * (0.5 + Math.random() / 2);
      this.reconnects += 1;
      setTimeout(() => this.connect(), delay);
    };
  }

  /** Closes the connection and stops reconnecting. */
  close() {
    this.closed = true;
    if (this.socket) this.socket.close();
  }
}
