// byok chat page: one websocket (/ws/chat/, authenticated by the session cookie), one answer at a time.
// Frames: see byok/ws/consumer.py. No build step, no dependencies.
(() => {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const log = $("log"), providerEl = $("provider"), modelEl = $("model"), promptEl = $("prompt");
  const sendBtn = $("send"), cancelBtn = $("cancel"), newChatBtn = $("new-chat"), conn = $("conn"), composer = $("composer");

  const history = []; // the conversation sent with each request: [{role, content}]
  let ws = null;
  let ready = false;
  let current = null; // the answer being streamed
  let seq = 0;
  let reconnectDelay = 500;
  let signedOut = false;

  // -- connection -------------------------------------------------------------------------------

  function setConn(state, text) {
    conn.dataset.state = state;
    conn.textContent = text || state;
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    setConn("connecting", "connecting…");
    ws = new WebSocket(`${proto}//${location.host}${document.body.dataset.wsPath || "/ws/chat/"}`);
    ws.onmessage = (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      handle(frame);
    };
    ws.onclose = (event) => {
      ready = false;
      if (current) fail(current, { code: "disconnected", message: "The connection was lost before the answer finished.", partial: current.text.length > 0 });
      if (event.code === 4401) {
        signedOut = true;
        setConn("error", "signed out");
        banner("Your session has ended. ", { href: `/admin/login/?next=${encodeURIComponent(location.pathname)}`, text: "Log in again" });
      } else {
        setConn("error", "reconnecting…");
        setTimeout(connect, reconnectDelay);
        reconnectDelay = Math.min(reconnectDelay * 2, 10000);
      }
      updateButtons();
    };
  }

  function send(frame) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(frame));
  }

  // -- frames from the server -----------------------------------------------------------------------

  function handle(f) {
    switch (f.type) {
      case "chat.ready":
        ready = true;
        reconnectDelay = 500;
        setConn("ok", "connected");
        updateButtons();
        break;
      case "chat.delta":
        if (current && f.id === current.id) delta(current, f);
        break;
      case "chat.tool_call":
        if (current && f.id === current.id) toolCall(current, f);
        break;
      case "chat.done":
        if (current && f.id === current.id) done(current, f);
        break;
      case "chat.error":
        if (current && f.id === current.id) fail(current, f);
        else banner(`${f.message} (${f.code})`);
        break;
      case "chat.notice":
        if (f.event !== "cancel_ignored") banner(f.message);
        break;
    }
  }

  // -- the conversation -----------------------------------------------------------------------------

  function bubble(role) {
    const hint = $("hint");
    if (hint) hint.remove();
    const el = document.createElement("article");
    el.className = `msg ${role}`;
    const body = document.createElement("div");
    body.className = "body";
    el.appendChild(body);
    log.appendChild(el);
    return el;
  }

  function nearBottom() {
    return log.scrollHeight - log.scrollTop - log.clientHeight < 80;
  }

  function scrollIfFollowing(follow) {
    if (follow) log.scrollTop = log.scrollHeight;
  }

  function ask(text) {
    const user = bubble("user");
    user.querySelector(".body").textContent = text;
    history.push({ role: "user", content: text });

    const el = bubble("assistant");
    el.dataset.state = "streaming";
    const body = el.querySelector(".body");
    const textNode = document.createTextNode("");
    body.appendChild(textNode);
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = "…";
    el.appendChild(meta);

    current = { id: `r${++seq}-${Date.now().toString(36)}`, el, body, textNode, meta, text: "", reasoning: null, tools: {}, user };
    const frame = { type: "chat.request", id: current.id, messages: history.slice() };
    if (providerEl.value) frame.provider = providerEl.value;
    if (modelEl.value.trim()) frame.model = modelEl.value.trim();
    send(frame);
    scrollIfFollowing(true);
    updateButtons();
  }

  function delta(answer, f) {
    const follow = nearBottom();
    if (f.reasoning) {
      if (!answer.reasoning) {
        const details = document.createElement("details");
        details.className = "reasoning";
        details.innerHTML = "<summary>Reasoning</summary>";
        const div = document.createElement("div");
        details.appendChild(div);
        answer.el.insertBefore(details, answer.body);
        answer.reasoning = div;
      }
      answer.reasoning.textContent += f.reasoning;
    }
    if (f.text) {
      answer.text += f.text;
      answer.textNode.appendData(f.text);
    }
    if (f.refusal) {
      answer.text += f.refusal;
      answer.textNode.appendData(f.refusal);
      answer.el.classList.add("refusal");
    }
    scrollIfFollowing(follow);
  }

  function toolCall(answer, f) {
    let call = answer.tools[f.index];
    if (!call) {
      const el = document.createElement("div");
      el.className = "tool";
      const name = document.createElement("span");
      name.className = "tool-name";
      name.textContent = `${f.name || "tool"}(`;
      const args = document.createElement("code");
      el.append(name, args, ")");
      answer.el.insertBefore(el, answer.meta);
      call = answer.tools[f.index] = { args };
    }
    call.args.textContent += f.arguments || "";
  }

  function ms(value) {
    if (value == null) return "–";
    return value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${Math.round(value)} ms`;
  }

  function done(answer, f) {
    const usage = f.usage || {};
    const parts = [f.provider, f.model, `${usage.input_tokens ?? 0} in / ${usage.output_tokens ?? 0} out tokens`,
      `${ms(f.latency_ms)} (first token ${ms(f.ttft_ms)})`];
    if (f.attempts > 1) parts.push(`${f.attempts} attempts`);
    if (f.finish_reason && f.finish_reason !== "stop") parts.push(`finish: ${f.finish_reason}`);
    answer.meta.textContent = parts.join(" · ");
    answer.el.dataset.state = "done";
    history.push({ role: "assistant", content: answer.text });
    finish();
  }

  function fail(answer, f) {
    const cancelled = f.code === "cancelled";
    answer.el.dataset.state = cancelled ? "cancelled" : "error";
    answer.meta.textContent = cancelled
      ? `Cancelled${f.partial ? " (partial answer)" : ""}`
      : `Error: ${f.message}${f.code ? ` [${f.code}]` : ""}${f.retryable ? " — you can try again." : ""}`;
    if (answer.text) history.push({ role: "assistant", content: answer.text });
    else history.pop(); // unanswered: leave the question out of the next request's history
    finish();
  }

  function finish() {
    current = null;
    updateButtons();
    promptEl.focus();
  }

  function banner(message, link) {
    const el = document.createElement("p");
    el.className = "notice";
    el.textContent = message;
    if (link) {
      const a = document.createElement("a");
      a.href = link.href;
      a.textContent = link.text;
      el.appendChild(a);
    }
    const follow = nearBottom();
    log.appendChild(el);
    scrollIfFollowing(follow);
  }

  function updateButtons() {
    sendBtn.disabled = !ready || !!current || signedOut;
    cancelBtn.hidden = !current;
    cancelBtn.disabled = !current || !!current.cancelling;
    newChatBtn.disabled = !!current;
  }

  // -- controls -------------------------------------------------------------------------------------

  composer.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = promptEl.value.trim();
    if (!text || !ready || current) return;
    promptEl.value = "";
    ask(text);
  });

  promptEl.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });

  cancelBtn.addEventListener("click", () => {
    if (!current) return;
    current.cancelling = true;
    current.meta.textContent = "Cancelling…";
    send({ type: "chat.cancel", id: current.id });
    updateButtons();
  });

  newChatBtn.addEventListener("click", () => {
    if (current) return;
    history.length = 0;
    log.replaceChildren();
    promptEl.focus();
  });

  function showDefaultModel() {
    const option = providerEl.selectedOptions[0];
    modelEl.placeholder = (option && option.dataset.model) || "provider default";
    localStorage.setItem("byok.chat.provider", providerEl.value);
  }

  providerEl.addEventListener("change", () => {
    modelEl.value = "";
    localStorage.setItem("byok.chat.model", "");
    showDefaultModel();
  });
  modelEl.addEventListener("change", () => localStorage.setItem("byok.chat.model", modelEl.value.trim()));

  const savedProvider = localStorage.getItem("byok.chat.provider");
  if (savedProvider && [...providerEl.options].some((o) => o.value === savedProvider)) {
    providerEl.value = savedProvider;
    modelEl.value = localStorage.getItem("byok.chat.model") || "";
  }
  showDefaultModel();
  updateButtons();
  connect();
})();
