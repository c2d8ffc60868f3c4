// Kiosk page: pick a category, get a number. The kiosk signs in as its OAuth client (client_credentials);
// staff provision it once with /queue/kiosk/<office>#client_id=...&client_secret=... (kept in localStorage).
(function () {
  "use strict";
  const office = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
  const API = "/api/queue/v1";
  const KEY = "motcua.kiosk." + office;
  const $ = (id) => document.getElementById(id);
  let token = null, tokenUntil = 0, priority = null, homeTimer = null;

  function vi(detail) { return String(detail || "").split(" / ")[0]; }
  function show(id) {
    for (const s of ["setup", "home", "result", "error"]) $(s).classList.toggle("hidden", !id.includes(s));
  }
  function key() {
    return (window.crypto && crypto.randomUUID) ? crypto.randomUUID()
      : Date.now().toString(36) + Math.random().toString(36).slice(2);
  }
  function credentials() {
    const h = new URLSearchParams(location.hash.slice(1));
    if (h.get("client_id") && h.get("client_secret")) {
      localStorage.setItem(KEY, JSON.stringify({ id: h.get("client_id"), secret: h.get("client_secret") }));
      history.replaceState(null, "", location.pathname);
    }
    try { return JSON.parse(localStorage.getItem(KEY) || "null"); } catch (e) { return null; }
  }
  async function getToken() {
    if (token && Date.now() < tokenUntil) return token;
    const c = credentials();
    if (!c) { show(["setup"]); throw new Error("setup"); }
    const r = await fetch("/api/auth/v1/token", {
      method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "client_credentials", client_id: c.id, client_secret: c.secret }),
    });
    if (!r.ok) {
      localStorage.removeItem(KEY);
      $("setup-error").textContent = "Mã hoặc khóa kiosk không đúng.";
      show(["setup"]);
      throw new Error("auth");
    }
    const j = await r.json();
    token = j.access_token;
    tokenUntil = Date.now() + Math.max(30, (j.expires_in || 300) - 60) * 1000;
    return token;
  }
  function fmtTime(iso) {
    const d = new Date(iso);
    return d.toLocaleString("vi-VN", { timeZone: "Asia/Ho_Chi_Minh", hour: "2-digit", minute: "2-digit",
      day: "2-digit", month: "2-digit", year: "numeric" });
  }
  function showError(p) {
    let text = vi(p.detail) || "Đã có lỗi, vui lòng thử lại.";
    if (p.code === "office_closed" && p.next_opening_at) text = "Ngoài giờ làm việc. Mở cửa lúc " + fmtTime(p.next_opening_at) + ".";
    if (p.code === "office_full") {
      text = "Phòng chờ đã đủ người.";
      if (p.next_free_slot) text += " Vui lòng đặt lịch hẹn trực tuyến, khung giờ trống gần nhất: " + fmtTime(p.next_free_slot.start_at) + ".";
    }
    $("error").textContent = text;
    show(["home", "error"]);
    backHome(8000);
  }
  function backHome(ms) {
    clearTimeout(homeTimer);
    homeTimer = setTimeout(() => { show(["home"]); }, ms);
  }
  function showTicket(t) {
    $("ticket-number").textContent = t.number;
    $("ticket-category").textContent = t.category_name || t.category_code;
    $("ticket-position").textContent = t.people_ahead != null ? "Số người chờ trước bạn: " + t.people_ahead : "";
    $("ticket-wait").textContent = t.estimated_wait ? "Thời gian chờ dự kiến: khoảng " + t.estimated_wait.minutes + " phút" : "";
    show(["result"]);
    backHome(20000);
  }
  async function post(path, body) {
    const tok = await getToken();
    const r = await fetch(API + path, {
      method: "POST", body: body ? JSON.stringify(body) : undefined,
      headers: { "Content-Type": "application/json", "Authorization": "Bearer " + tok, "Idempotency-Key": key() },
    });
    const j = await r.json().catch(() => ({}));
    if (!r.ok) { showError(j); return null; }
    return j;
  }
  async function take(category) {
    const body = { office_code: office, category_code: category };
    if (priority) body.priority = priority;
    const t = await post("/tickets", body).catch(() => null);
    priority = null;
    document.querySelectorAll("#priority button").forEach((b) => b.classList.remove("on"));
    if (t) showTicket(t);
  }
  async function load() {
    const r = await fetch(API + "/offices/" + encodeURIComponent(office) + "/categories");
    const j = await r.json();
    if (!r.ok) { showError(j); return; }
    $("office-name").textContent = j.office.name;
    document.title = "Lấy số — " + j.office.name;
    const box = $("categories");
    box.innerHTML = "";
    for (const c of j.categories) {
      const b = document.createElement("button");
      b.className = "big";
      b.dataset.category = c.code;
      const p = document.createElement("span");
      p.className = "prefix";
      p.textContent = c.prefix;
      b.append(p, document.createTextNode(c.name));
      b.addEventListener("click", () => take(c.code));
      box.append(b);
    }
  }
  document.querySelectorAll("#priority button").forEach((b) => b.addEventListener("click", () => {
    const on = !b.classList.contains("on");
    document.querySelectorAll("#priority button").forEach((x) => x.classList.remove("on"));
    b.classList.toggle("on", on);
    priority = on ? b.dataset.group : null;
  }));
  $("check-in").addEventListener("click", async () => {
    const code = $("booking-code").value.trim().toUpperCase();
    if (!code) return;
    const j = await post("/appointments/" + encodeURIComponent(code) + "/check-in").catch(() => null);
    $("booking-code").value = "";
    if (j) showTicket(j.ticket);
  });
  $("done").addEventListener("click", () => show(["home"]));
  $("save-setup").addEventListener("click", () => {
    localStorage.setItem(KEY, JSON.stringify({ id: $("client-id").value.trim(), secret: $("client-secret").value }));
    token = null;
    getToken().then(() => show(["home"])).catch(() => {});
  });
  setInterval(() => { $("clock").textContent = new Date().toLocaleTimeString("vi-VN", { timeZone: "Asia/Ho_Chi_Minh" }); }, 1000);
  show(["home"]);
  load();
  getToken().then(() => show(["home"])).catch(() => {});
})();
