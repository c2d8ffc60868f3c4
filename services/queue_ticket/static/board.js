// Waiting-room TV: a snapshot, then each call, from the SSE stream (EventSource reconnects with Last-Event-ID).
(function () {
  "use strict";
  const office = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
  const API = "/api/queue/v1/offices/" + encodeURIComponent(office);
  const $ = (id) => document.getElementById(id);
  let calls = [];

  function renderCalls() {
    const body = $("calls");
    body.innerHTML = "";
    for (const c of calls.slice(0, 8)) {
      const tr = document.createElement("tr");
      const n = document.createElement("td");
      n.className = "num";
      n.textContent = c.number;
      const k = document.createElement("td");
      k.textContent = "Quầy " + c.counter_number;
      tr.append(n, k);
      body.append(tr);
    }
  }
  function renderState(s) {
    $("office-name").textContent = s.office_name;
    const w = $("waiting");
    w.innerHTML = "";
    for (const c of s.waiting) {
      const d = document.createElement("div");
      d.textContent = c.prefix + " · " + c.name + ": " + c.waiting + " người chờ";
      w.append(d);
    }
    const k = $("counters");
    k.innerHTML = "";
    for (const c of s.counters) {
      const tr = document.createElement("tr");
      const a = document.createElement("td");
      a.textContent = "Quầy " + c.number;
      const b = document.createElement("td");
      b.className = "num";
      b.dataset.counter = c.id;
      b.textContent = c.ticket_number || "—";
      tr.append(a, b);
      k.append(tr);
    }
  }
  function announce(c, flash) {
    $("current-number").textContent = c.number;
    $("current-counter").textContent = "Đến quầy số " + c.counter_number;
    const cell = document.querySelector('[data-counter="' + c.counter_id + '"]');
    if (cell) cell.textContent = c.number;
    if (flash) {
      const now = $("now");
      now.classList.remove("flash");
      void now.offsetWidth;
      now.classList.add("flash");
      try {
        const u = new SpeechSynthesisUtterance("Mời công dân có số " + c.number.split("").join(" ") + " đến quầy số " + c.counter_number);
        u.lang = "vi-VN";
        window.speechSynthesis.speak(u);
      } catch (e) { /* no speech on this device */ }
    }
  }
  function onCall(e) {
    const c = JSON.parse(e.data);
    calls = [c].concat(calls.filter((x) => x.id !== c.id)).slice(0, 20);
    renderCalls();
    announce(c, true);
  }
  async function refresh() {
    try {
      const r = await fetch(API + "/board");
      if (r.ok) renderState(await r.json());
    } catch (e) { /* next time */ }
  }
  const es = new EventSource(API + "/board/stream");
  es.addEventListener("snapshot", (e) => {
    const s = JSON.parse(e.data);
    calls = s.latest_calls;
    renderCalls();
    renderState(s);
    if (calls.length) announce(calls[0], false);
  });
  es.addEventListener("call", onCall);
  es.addEventListener("recall", onCall);
  es.onopen = () => { $("conn").textContent = "· trực tuyến"; };
  es.onerror = () => { $("conn").textContent = "· đang kết nối lại…"; };
  setInterval(refresh, 10000);
  setInterval(() => { $("clock").textContent = new Date().toLocaleTimeString("vi-VN", { timeZone: "Asia/Ho_Chi_Minh" }); }, 1000);
})();
