// WebRTC with the stylecast server, shared by the page (/) and the OBS view (/obs).
// No build step: plain browser JavaScript. docs/server.md describes the endpoints.
"use strict";

const stylecast = (() => {
  const token = new URLSearchParams(location.search).get("token");

  function api(path, options = {}) {
    const headers = Object.assign({}, options.headers || {});
    if (token) headers["Authorization"] = "Bearer " + token;
    return fetch(path, Object.assign({}, options, { headers }));
  }

  async function json(path, options) {
    const r = await api(path, options);
    const body = await r.json().catch(() => ({}));
    if (!r.ok) {
      const e = body.error || {};
      throw new Error(e.message || (body.detail && JSON.stringify(body.detail)) || r.statusText);
    }
    return body;
  }

  function iceDone(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (pc.iceGatheringState === "complete") {
          pc.removeEventListener("icegatheringstatechange", check);
          resolve();
        }
      };
      pc.addEventListener("icegatheringstatechange", check);
      setTimeout(resolve, 3000); // host candidates are enough on a LAN
    });
  }

  // Connect: `mic` is a MediaStream to send (or null to only watch), `params` go into the
  // offer ({avatar, style, size} or {watch: id}). Returns {pc, channel, id, stream}.
  async function connect(mic, params, onEvent) {
    const pc = new RTCPeerConnection({ iceServers: [] });
    const stream = new MediaStream();
    pc.addEventListener("track", (e) => stream.addTrack(e.track));
    if (mic) {
      for (const track of mic.getAudioTracks()) pc.addTrack(track, mic);
    } else {
      pc.addTransceiver("audio", { direction: "recvonly" });
    }
    pc.addTransceiver("video", { direction: "recvonly" });
    const channel = pc.createDataChannel("control");
    channel.addEventListener("message", (e) => onEvent && onEvent(JSON.parse(e.data)));
    await pc.setLocalDescription(await pc.createOffer());
    await iceDone(pc);
    const answer = await json("/v1/webrtc/offer", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(Object.assign({ sdp: pc.localDescription.sdp, type: "offer" }, params)),
    });
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    return { pc, channel, id: answer.id, stream };
  }

  function send(link, msg) {
    if (link && link.channel.readyState === "open") link.channel.send(JSON.stringify(msg));
  }

  return { api, json, connect, send, token };
})();
