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
// Tokens go only where they are meant to: the client attaches the bearer
// token to, and accepts next tokens from, the origins in `allowedOrigins`
// (default: the page's own origin) and no other; a request to any other
// origin is sent as plain `fetch` and its headers are ignored. Allowed
// origins and the WebSocket endpoint must use HTTPS / WSS, except on
// loopback hosts, unless `allowInsecure` is set. Tokens never travel in a
// URL: pass the first one from a login response, not from the page's URL.
//
// Request bodies must be replayable for the retry (a string, Blob,
// FormData, URLSearchParams or ArrayBuffer, not a ReadableStream). Across
// origins, the server must list `x-foresight-next-token` in
// `Access-Control-Expose-Headers` and the page's origin must be in the
// WebSocket endpoint's allow-list.
//
//   import { ForesightTokenClient } from "./foresight-token.js";
//   const client = new ForesightTokenClient({
//     token,
//     wsUrl: "wss://api.example/foresight/ws",
//     allowedOrigins: ["https://api.example"],
//   });
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

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"]);

function pageOrigin() {
  return typeof location !== "undefined" ? location.origin : undefined;
}

// The origin a request or a WebSocket URL goes to, as `scheme://host:port`
// with ws(s) spelled http(s), so that one allow-list covers both.
function originOf(url) {
  const parsed = new URL(url, typeof location !== "undefined" ? location.href : undefined);
  const protocol = { "ws:": "http:", "wss:": "https:" }[parsed.protocol] || parsed.protocol;
  return `${protocol}//${parsed.host}`;
}

function checkSecure(origin, allowInsecure) {
  const parsed = new URL(origin);
  if (parsed.protocol === "https:" || allowInsecure || LOOPBACK.has(parsed.hostname)) return;
  throw new Error(`foresight-token: ${origin} is not HTTPS; tokens are not sent over plain HTTP unless allowInsecure is set`);
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
   * @param {string[]} [options.allowedOrigins] origins that get the token and may send next tokens
   *        (default: the page's origin)
   * @param {boolean} [options.allowInsecure=false] allow plain HTTP / WS origins beyond loopback
   */
  constructor(options) {
    const allowInsecure = options.allowInsecure === true;
    const origins = options.allowedOrigins || [pageOrigin()].filter(Boolean);
    this.allowedOrigins = new Set(origins.map(originOf));
    this.allowedOrigins.forEach((origin) => checkSecure(origin, allowInsecure));
    if (options.wsUrl) {
      const wsOrigin = originOf(options.wsUrl);
      if (!this.allowedOrigins.has(wsOrigin)) {
        throw new Error(`foresight-token: the WebSocket endpoint's origin ${wsOrigin} is not allowed`);
      }
    }
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
    const url = typeof input === "string" || input instanceof URL ? input : input.url;
    if (!this.allowedOrigins.has(originOf(url))) {
      // Not ours to authenticate: no token out, no token in.
      this.onEvent({ type: "not-allowed", origin: originOf(url) });
      return fetch(input, init);
    }
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
