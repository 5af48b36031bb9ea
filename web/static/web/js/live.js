// The websocket: connects, greets, reconnects with back-off; says whether it is live.

export class LiveSocket {
  constructor(path, { onHello, onEvent, onState, onRevoked }) {
    this.path = path;
    this.onHello = onHello;
    this.onEvent = onEvent;
    this.onState = onState;
    this.onRevoked = onRevoked;
    this.ws = null;
    this.attempt = 0;
    this.state = "connecting";
    this.stopped = false;
  }

  start() {
    this.connect();
    window.addEventListener("online", () => this.reconnectNow());
  }

  setState(state) {
    if (state !== this.state) {
      this.state = state;
      this.onState(state);
    }
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}${this.path}`;
  }

  connect() {
    if (this.stopped) return;
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onmessage = (message) => {
      let body;
      try {
        body = JSON.parse(message.data);
      } catch {
        return;
      }
      // A frame is one message, or a list of one user's events sent together (in order).
      for (const one of Array.isArray(body) ? body : [body]) this.handle(one);
    };
    ws.onclose = (event) => {
      if (this.ws === ws) this.ws = null;
      if (event.code === 4401) {
        this.stopped = true;
        this.onRevoked();
        return;
      }
      this.setState("down");
      this.scheduleReconnect();
    };
  }

  handle(body) {
    if (body.type === "hello") {
      this.attempt = 0;
      this.setState("live");
      this.onHello(body);
    } else if (body.type === "revoked") {
      this.stopped = true;
      this.onRevoked();
    } else {
      this.onEvent(body);
    }
  }

  scheduleReconnect() {
    if (this.stopped) return;
    const delay = Math.min(15000, 500 * 2 ** this.attempt) * (0.75 + Math.random() / 2);
    this.attempt += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    if (!this.ws && !this.stopped) {
      clearTimeout(this.timer);
      this.connect();
    }
  }
}
