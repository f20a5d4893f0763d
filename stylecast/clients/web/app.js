// The page at /: choose an avatar and two styles, mix them live, talk through the mic.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { link: null, mic: null, events: [], mixTimer: null };
window.stylecastPage = state; // for tests and the curious: state.events, state.link

function setStatus(text) {
  $("status").textContent = text;
}

function logEvent(e) {
  state.events.push(Object.assign({ at: performance.now() }, e));
  if (e.type === "pong") return;
  const li = document.createElement("li");
  li.textContent =
    e.type === "playback_finished"
      ? `finished segment ${e.segment} at ${e.position.toFixed(2)} s${e.interrupted ? " (interrupted)" : ""}`
      : e.type === "segment_started"
        ? `speaking segment ${e.segment}`
        : `${e.type}: ${e.message || ""}`;
  $("events").prepend(li);
  while ($("events").children.length > 8) $("events").lastChild.remove();
  if (e.type === "segment_started") setStatus("speaking");
  if (e.type === "playback_finished") setStatus("listening");
}

function mixedStyle() {
  const a = $("style-a").value, b = $("style-b").value;
  const x = Number($("mix").value) / 100;
  if (a === b || x === 0) return a;
  if (x === 1) return b;
  return { [a]: 1 - x, [b]: x };
}

function sendStyle() {
  clearTimeout(state.mixTimer);
  state.mixTimer = setTimeout(() => stylecast.send(state.link, { type: "set_style", style: mixedStyle() }), 60);
}

async function loadLists() {
  const [{ avatars }, { styles }] = await Promise.all([
    stylecast.json("/v1/avatars"),
    stylecast.json("/v1/styles"),
  ]);
  $("avatar-select").replaceChildren(
    ...avatars.map((a) => new Option(`${a.name} (${a.source})`, a.name)),
  );
  const usable = styles.filter((s) => s.usable);
  for (const [id, pick] of [["style-a", "neutral"], ["style-b", "happy"]]) {
    $(id).replaceChildren(...usable.map((s) => new Option(s.name, s.name, false, s.name === pick)));
  }
  showPreview();
}

function showPreview() {
  const name = $("avatar-select").value;
  if (name) $("avatar-preview").src = `/v1/avatars/${encodeURIComponent(name)}/preview.jpg` +
    (stylecast.token ? `?token=${encodeURIComponent(stylecast.token)}` : "");
}

async function start() {
  $("start").disabled = true;
  try {
    setStatus("asking for the microphone…");
    state.mic = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    setStatus("connecting…");
    state.link = await stylecast.connect(
      state.mic,
      { avatar: $("avatar-select").value, style: mixedStyle(), size: Number($("size").value) },
      logEvent,
    );
    $("avatar").srcObject = state.link.stream;
    state.link.pc.addEventListener("connectionstatechange", () => {
      const s = state.link && state.link.pc.connectionState;
      if (s === "connected") setStatus("listening");
      if (s === "failed" || s === "closed") stop();
    });
    $("obs-link").href = `/obs?watch=${state.link.id}` + (stylecast.token ? `&token=${stylecast.token}` : "");
    $("obs-link").textContent = `/obs?watch=${state.link.id}`;
    $("stop").disabled = false;
    $("interrupt").disabled = false;
  } catch (err) {
    setStatus("error: " + err.message);
    logEvent({ type: "error", message: err.message });
    stop();
  }
}

function stop() {
  if (state.link) {
    stylecast.api(`/v1/webrtc/${state.link.id}`, { method: "DELETE" }).catch(() => {});
    state.link.pc.close();
  }
  if (state.mic) state.mic.getTracks().forEach((t) => t.stop());
  state.link = null;
  state.mic = null;
  $("start").disabled = false;
  $("stop").disabled = true;
  $("interrupt").disabled = true;
  if (!$("status").textContent.startsWith("error")) setStatus("not connected");
}

async function upload(ev) {
  ev.preventDefault();
  const file = $("upload-file").files[0];
  const name = $("upload-name").value;
  $("upload-status").textContent = "building…";
  try {
    await stylecast.json(`/v1/avatars?name=${encodeURIComponent(name)}`, {
      method: "POST",
      headers: { "Content-Type": file.type },
      body: file,
    });
    $("upload-status").textContent = "done";
    await loadLists();
    $("avatar-select").value = name;
    showPreview();
  } catch (err) {
    $("upload-status").textContent = err.message;
  }
}

$("start").addEventListener("click", start);
$("stop").addEventListener("click", stop);
$("interrupt").addEventListener("click", () => stylecast.send(state.link, { type: "clear" }));
$("mix").addEventListener("input", () => {
  $("mix-value").textContent = $("mix").value + "%";
  sendStyle();
});
$("style-a").addEventListener("change", sendStyle);
$("style-b").addEventListener("change", sendStyle);
$("avatar-select").addEventListener("change", showPreview);
$("upload").addEventListener("submit", upload);
state.start = start;
state.stop = stop;
loadLists().catch((err) => setStatus("error: " + err.message));
