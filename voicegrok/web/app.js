// voicegrok browser client: the Realtime API over a websocket, microphone through an
// AudioWorklet, the streamed answer played as it arrives, barge-in, live tokens/s.
"use strict";

const RATE = 24000;
const $ = (id) => document.getElementById(id);
const vg = (window.voicegrok = {
  ws: null, ctx: null, mic: null, playing: [], playEnd: 0, itemStart: null,
  reply: null, you: null, playedSeconds: 0, responses: 0, completed: 0, errors: [],
});

function setState(text, cls) {
  const el = $("state");
  el.textContent = text;
  el.className = "state " + (cls || "");
}

function notice(text) { $("notice").textContent = text || ""; }

function bubble(kind, text, item) {
  const div = document.createElement("div");
  if (item) div.dataset.item = item;
  div.className = "msg " + kind;
  div.textContent = text;
  $("chat").appendChild(div);
  div.scrollIntoView({ block: "end" });
  return div;
}

function note(div, text) {
  const span = document.createElement("span");
  span.className = "note";
  span.textContent = text;
  div.appendChild(span);
}

// ------------------------------------------------------------------ connection

function connect() {
  if (vg.ws && vg.ws.readyState <= 1) return Promise.resolve(vg.ws);
  const params = new URLSearchParams(location.search);
  const token = params.get("token");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const url = `${scheme}://${location.host}/v1/realtime` + (token ? `?token=${encodeURIComponent(token)}` : "");
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    vg.ws = ws;
    setState("connecting…");
    ws.onopen = () => { setState("connected", "listening"); resolve(ws); };
    ws.onerror = () => {
      setState("cannot connect", "error");
      notice("The server refused the connection: check the address and the ?token= in the URL.");
      reject(new Error("websocket error"));
    };
    ws.onclose = (e) => {
      setState(e.reason ? `closed: ${e.reason}` : "disconnected", "error");
      $("talk").disabled = false;
      $("talk").textContent = "Start talking";
    };
    ws.onmessage = (e) => onEvent(JSON.parse(e.data));
  });
}

function send(event) {
  if (vg.ws && vg.ws.readyState === 1) vg.ws.send(JSON.stringify(event));
}

// ------------------------------------------------------------------ audio

function audioContext() {
  if (!vg.ctx) {
    vg.ctx = new AudioContext({ sampleRate: RATE });
  }
  if (vg.ctx.state === "suspended") vg.ctx.resume();
  return vg.ctx;
}

function toBase64(int16) {
  const bytes = new Uint8Array(int16.buffer);
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

function fromBase64(b64) {
  const s = atob(b64);
  const bytes = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
  return new Int16Array(bytes.buffer, 0, bytes.length >> 1);
}

async function startMic() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    notice("This browser gives no microphone to plain-HTTP pages off localhost: " +
      "open the page over HTTPS (voicegrok serve --certfile --keyfile), or type instead.");
    return false;
  }
  const ctx = audioContext();
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
  } catch (err) {
    notice(`No microphone: ${err.message}. You can still type.`);
    return false;
  }
  await ctx.audioWorklet.addModule("worklet.js");
  const source = ctx.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(ctx, "capture");
  node.port.onmessage = (e) => {
    const f = e.data;
    let sum = 0;
    const pcm = new Int16Array(f.length);
    for (let i = 0; i < f.length; i++) {
      const x = Math.max(-1, Math.min(1, f[i]));
      sum += x * x;
      pcm[i] = x < 0 ? x * 0x8000 : x * 0x7fff;
    }
    $("level").value = Math.sqrt(sum / f.length);
    send({ type: "input_audio_buffer.append", audio: toBase64(pcm) });
  };
  source.connect(node);
  vg.mic = { stream, node };
  if (ctx.sampleRate !== RATE) {
    send({ type: "session.update", session: { type: "realtime",
      audio: { input: { format: { type: "audio/pcm", rate: ctx.sampleRate } } } } });
  }
  return true;
}

function play(b64) {
  const ctx = audioContext();
  const pcm = fromBase64(b64);
  if (!pcm.length) return;
  const buffer = ctx.createBuffer(1, pcm.length, RATE);
  const ch = buffer.getChannelData(0);
  for (let i = 0; i < pcm.length; i++) ch[i] = pcm[i] / 32768;
  const src = ctx.createBufferSource();
  src.buffer = buffer;
  src.connect(ctx.destination);
  const at = Math.max(ctx.currentTime + 0.02, vg.playEnd);
  if (vg.itemStart === null) vg.itemStart = at;
  src.start(at);
  vg.playEnd = at + buffer.duration;
  vg.playing.push(src);
  src.onended = () => {
    vg.playedSeconds += buffer.duration;
    vg.playing = vg.playing.filter((s) => s !== src);
    if (!vg.playing.length && !vg.reply) setState("listening", "listening");
  };
  setState("speaking", "speaking");
}

function stopPlayback() {
  // Barge-in: silence at once and tell the server how much of the answer was heard.
  const ctx = vg.ctx;
  if (vg.playing.length && ctx && vg.lastItem) {
    const heardMs = Math.max(0, Math.round((ctx.currentTime - vg.itemStart) * 1000));
    send({ type: "conversation.item.truncate", item_id: vg.lastItem, content_index: 0,
      audio_end_ms: Math.min(heardMs, vg.lastItemMs) });
  }
  for (const s of vg.playing) { try { s.stop(); } catch (_) { /* already stopped */ } }
  vg.playing = [];
  vg.playEnd = 0;
}

// ------------------------------------------------------------------ events

function onEvent(ev) {
  switch (ev.type) {
    case "session.created":
      setState("connected", "listening");
      break;
    case "input_audio_buffer.speech_started":
      stopPlayback();
      vg.you = bubble("you partial", "…", ev.item_id);
      setState("hearing you", "listening");
      break;
    case "conversation.item.input_audio_transcription.delta":
      if (vg.you) vg.you.textContent = (vg.you.textContent === "…" ? "" : vg.you.textContent) + ev.delta;
      break;
    case "conversation.item.input_audio_transcription.completed":
      if (!vg.you) vg.you = bubble("you", "");
      vg.you.textContent = ev.transcript || "(nothing heard)";
      vg.you.className = "msg you";
      vg.you = null;
      break;
    case "response.created":
      vg.reply = { id: ev.response.id, div: bubble("bot", ""), tokens: 0, t0: performance.now() };
      vg.itemStart = null;
      vg.lastItemMs = 0;
      $("stop").disabled = false;
      setState("thinking", "speaking");
      break;
    case "response.output_item.added":
      vg.lastItem = ev.item.id;
      if (vg.reply) vg.reply.div.dataset.item = ev.item.id;
      break;
    case "conversation.item.deleted":
      // an answer started at a pause is withdrawn with its question: the person went on
      for (const el of document.querySelectorAll(`[data-item="${CSS.escape(ev.item_id)}"]`)) el.remove();
      break;
    case "response.output_text.delta":
    case "response.output_audio_transcript.delta":
      if (vg.reply) {
        vg.reply.div.textContent += ev.delta;
        vg.reply.div.scrollIntoView({ block: "end" });
        vg.reply.tokens += 1;
        const s = (performance.now() - vg.reply.t0) / 1000;
        if (s > 0.2) $("tps").textContent = (vg.reply.tokens / s).toFixed(0);
      }
      break;
    case "response.output_audio.delta":
      if (vg.reply) {
        vg.lastItemMs += (ev.delta.length * 3) / 4 / 2 / RATE * 1000;
        play(ev.delta);
      }
      break;
    case "response.done":
      if (vg.reply) {
        const status = ev.response.status;
        if (status !== "completed" && !vg.reply.div.textContent) vg.reply.div.remove();
        else if (status !== "completed") note(vg.reply.div, status === "cancelled" ? "(interrupted)" : `(${status})`);
        vg.responses += 1;
        if (status === "completed") vg.completed += 1;
      }
      vg.reply = null;
      $("stop").disabled = true;
      if (!vg.playing.length) setState("listening", "listening");
      break;
    case "voicegrok.metrics": {
      const m = ev.metrics;
      if (m.tokens_per_s) $("tps").textContent = Number(m.tokens_per_s).toFixed(0);
      if (m.first_audio_ms != null) $("latency").textContent = `${Math.round(m.first_audio_ms)} ms`;
      break;
    }
    case "error":
      vg.errors.push(ev.error);
      notice(`${ev.error.code || "error"}: ${ev.error.message}`);
      break;
    default:
      break;
  }
}

// ------------------------------------------------------------------ controls

$("talk").addEventListener("click", async () => {
  $("talk").disabled = true;
  try {
    await connect();
    if (await startMic()) {
      $("talk").textContent = "Listening";
      setState("listening", "listening");
    } else {
      $("talk").disabled = false;
    }
  } catch (_) {
    $("talk").disabled = false;
  }
});

$("stop").addEventListener("click", () => {
  stopPlayback();
  if (vg.reply) send({ type: "response.cancel" });
});

$("ask").addEventListener("submit", async (e) => {
  e.preventDefault();
  const text = $("text").value.trim();
  if (!text) return;
  audioContext();
  try { await connect(); } catch (_) { return; }
  stopPlayback();
  if (vg.reply) send({ type: "response.cancel" });
  $("text").value = "";
  bubble("you", text);
  send({ type: "conversation.item.create",
    item: { type: "message", role: "user", content: [{ type: "input_text", text }] } });
  send({ type: "response.create" });
});
