// Public tracking page (mở từ mã QR trên Giấy tiếp nhận, mẫu 01): the citizen types the last four digits of the
// phone number on the dossier; the page asks the public JSON API and shows status, due date and next step.
// Everything is written with textContent: nothing from the URL or the API is ever parsed as HTML.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const segment = location.pathname.split("/").filter(Boolean).pop() || "";
  let code = "";
  try { code = decodeURIComponent(segment); } catch (e) { code = segment; }
  const ACTIVE = ["received", "in_progress"];
  const FALLBACK_NEXT = {
    received: "Cơ quan đang xử lý hồ sơ",
    in_progress: "Cơ quan đang giải quyết hồ sơ",
    supplement_requested: "Bổ sung giấy tờ theo phiếu yêu cầu bổ sung, hướng dẫn của cơ quan",
    resolved: "Nhận kết quả theo nơi trả kết quả ghi trên giấy hẹn",
    returned: "Đã trả kết quả, hồ sơ hoàn tất",
    withdrawn: "Hồ sơ đã dừng giải quyết",
  };

  function vi(text) { return String(text || "").split(" / ")[0]; }
  function two(n) { return String(n).padStart(2, "0"); }
  function fmt(iso) {
    const d = new Date(iso);
    if (isNaN(d.getTime())) return "";
    const parts = {};
    for (const p of new Intl.DateTimeFormat("en-GB", {
      timeZone: "Asia/Ho_Chi_Minh", hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit",
    }).formatToParts(d)) parts[p.type] = p.value;
    return two(parts.hour) + " giờ " + two(parts.minute) + " phút, ngày " + parts.day + "/" + parts.month + "/" +
      parts.year;
  }
  function showError(text) {
    $("error").textContent = text;
    $("error").classList.remove("hidden");
  }
  function showResult(d) {
    $("procedure").textContent = d.procedure_name || "";
    $("status").textContent = vi(d.status_text) || d.status;
    let due = d.due_at ? fmt(d.due_at) : "";
    if (!due && d.acceptance_due_at) due = "Chờ cán bộ tiếp nhận hồ sơ trực tuyến (hạn tiếp nhận: " + fmt(d.acceptance_due_at) + ")";
    else if (!due) due = "Chưa xác định (tính từ khi cơ quan nhận đủ hồ sơ)";
    else if (ACTIVE.includes(d.status) && new Date(d.due_at).getTime() < Date.now()) due += " (đã quá hạn)";
    $("due").textContent = due;
    $("next").textContent = (ACTIVE.includes(d.status) && d.next_step) ? d.next_step
      : (FALLBACK_NEXT[d.status] || "—");
    $("ask").classList.add("hidden");
    $("result").classList.remove("hidden");
  }
  async function lookUp(event) {
    event.preventDefault();
    $("error").classList.add("hidden");
    const digits = $("phone-last4").value.trim();
    if (!/^[0-9]{4}$/.test(digits)) {
      showError("Vui lòng nhập đúng 4 chữ số cuối của số điện thoại.");
      return;
    }
    const url = new URL("../dossiers/" + encodeURIComponent(code), location.href);
    url.searchParams.set("phone_last4", digits);
    $("submit").disabled = true;
    try {
      const r = await fetch(url.toString(), { headers: { Accept: "application/json" }, credentials: "omit" });
      if (r.ok) {
        showResult(await r.json());
      } else if (r.status === 404) {
        showError("Không tìm thấy hồ sơ: mã hồ sơ hoặc 4 số cuối số điện thoại không đúng. Vui lòng kiểm tra lại.");
      } else if (r.status === 429) {
        const wait = parseInt(r.headers.get("Retry-After") || "", 10);
        const minutes = wait > 0 ? Math.max(1, Math.ceil(wait / 60)) : 1;
        showError("Bạn đã tra cứu quá nhiều lần. Vui lòng thử lại sau " + minutes + " phút.");
      } else if (r.status === 422) {
        showError("Mã hồ sơ hoặc số điện thoại không hợp lệ. Vui lòng kiểm tra lại.");
      } else {
        showError("Hệ thống đang bận, vui lòng thử lại sau.");
      }
    } catch (e) {
      showError("Không kết nối được, vui lòng kiểm tra mạng và thử lại sau.");
    } finally {
      $("submit").disabled = false;
    }
  }

  $("code").textContent = code;
  $("ask").addEventListener("submit", lookUp);
  $("again").addEventListener("click", function () {
    $("phone-last4").value = "";
    $("result").classList.add("hidden");
    $("ask").classList.remove("hidden");
    $("phone-last4").focus();
  });
})();
