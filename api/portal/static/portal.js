// meterd portal behaviour. Loaded as a file (the content security policy
// allows no inline script): CSRF header on htmx requests, the menu on
// narrow screens, ages that count up, usage charts with uPlot, and errors
// of background refreshes.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") : "";
  }

  // Every htmx request carries the CSRF token (the server refuses unsafe
  // requests without it).
  document.addEventListener("htmx:configRequest", function (e) {
    e.detail.headers["X-CSRF-Token"] = csrf();
  });

  // A background refresh that failed says so, once, without replacing
  // what is on the page.
  function toast(msg) {
    var t = document.getElementById("toast");
    if (!t) return;
    t.textContent = msg;
    t.hidden = false;
    clearTimeout(t._timer);
    t._timer = setTimeout(function () { t.hidden = true; }, 8000);
  }
  document.addEventListener("htmx:responseError", function (e) {
    var x = e.detail.xhr;
    toast("Could not refresh: " + (x && x.responseText ? x.responseText : "the server answered " + (x ? x.status : "nothing")));
  });
  document.addEventListener("htmx:sendError", function () {
    toast("Could not reach the server; showing the last known values.");
  });

  // Forms that do something hard to undo ask first.
  document.addEventListener("submit", function (e) {
    var f = e.target;
    var msg = f && f.getAttribute && f.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) e.preventDefault();
  });

  // Menu on narrow screens.
  function menu() {
    var b = document.querySelector(".menu-toggle");
    var nav = document.getElementById("nav");
    if (!b || !nav || b._wired) return;
    b._wired = true;
    b.addEventListener("click", function () {
      var open = nav.classList.toggle("open");
      b.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  // Ages ("12 s ago") count up between refreshes.
  function ago(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    if (s < 2) return "just now";
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.floor(s / 60) + " min ago";
    if (s < 172800) return Math.floor(s / 3600) + " h ago";
    return Math.floor(s / 86400) + " days ago";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-since]").forEach(function (el) {
      var t = parseInt(el.getAttribute("data-since"), 10);
      if (!isNaN(t)) el.textContent = ago(now - t);
    });
  }
  setInterval(tick, 1000);

  // Usage charts: data-chart holds {"t": [unix s], "kwh": [...], "gran":
  // "day"|"hour"|"month", "tz": zone, "drill": URL prefix of a day's hours}.
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function draw(el) {
    if (el._uplot || typeof uPlot === "undefined") return;
    var d;
    try { d = JSON.parse(el.getAttribute("data-chart")); } catch (err) { return; }
    if (!d || !d.t || d.t.length === 0) return;
    var tz = d.tz || "UTC";
    var tzDate = function (ts) { return uPlot.tzDate(new Date(ts * 1e3), tz); };
    var width = Math.max(280, el.clientWidth || 600);
    var step = d.t.length > 1 ? d.t[1] - d.t[0] : (d.gran === "hour" ? 3600 : 86400);
    var label = d.gran === "hour" ? "kWh per hour" : d.gran === "month" ? "kWh per month" : "kWh per day";
    var bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.7, 60] }) : null;
    var opts = {
      width: width,
      height: 260,
      tzDate: tzDate,
      cursor: { drag: { x: false, y: false } },
      scales: {
        // Half a bucket of room at both ends, so the first and last bars
        // are whole.
        x: { time: true, range: function (u, min, max) { return [min - step / 2, max + step / 2]; } },
        y: { range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; } }
      },
      axes: [{}, { label: "kWh", size: 60 }],
      series: [
        {},
        { label: label, stroke: "#0b4f8a", fill: "rgba(11,79,138,0.35)", width: 1, paths: bars, points: { show: false },
          value: function (u, v) { return v == null ? "—" : v.toFixed(2) + " kWh"; } }
      ]
    };
    var u = new uPlot(opts, [d.t, d.kwh], el);
    el._uplot = u;
    if (d.drill) {
      u.over.style.cursor = "pointer";
      u.over.addEventListener("click", function () {
        var i = u.cursor.idx;
        if (i == null) return;
        var t = tzDate(d.t[i]);
        window.location.href = d.drill + t.getFullYear() + "-" + pad(t.getMonth() + 1) + "-" + pad(t.getDate());
      });
    }
    var resize = function () {
      var w = Math.max(280, el.clientWidth);
      if (w !== u.width) u.setSize({ width: w, height: 260 });
    };
    window.addEventListener("resize", resize);
  }
  function charts(root) {
    (root || document).querySelectorAll("[data-chart]").forEach(draw);
  }

  // A page reached from another site (a payment provider's return link)
  // carries no SameSite=Strict cookies; following its link from here does.
  function autofollow() {
    var a = document.querySelector("a[data-autofollow]");
    if (a) window.location.replace(a.href);
  }

  // The checkout page opens the payment provider's own checkout (its SDK,
  // loaded from its origin by the page) and sends the payer back to
  // return_url with the fields meterd verifies before trusting anything.
  function checkout() {
    var el = document.getElementById("checkout");
    if (!el || el._wired) return;
    el._wired = true;
    var kind = el.getAttribute("data-kind");
    var p = JSON.parse(el.getAttribute("data-params") || "{}");
    var btn = document.getElementById("checkout-open");
    var errEl = document.getElementById("checkout-error");
    function fail(msg) {
      errEl.textContent = msg;
      errEl.hidden = false;
      btn.disabled = false;
    }
    function back(fields) {
      var q = Object.keys(fields).map(function (k) {
        return encodeURIComponent(k) + "=" + encodeURIComponent(fields[k] || "");
      }).join("&");
      window.location.assign(p.return_url + (p.return_url.indexOf("?") < 0 ? "?" : "&") + q);
    }
    if (kind === "razorpay_checkout") {
      btn.addEventListener("click", function () {
        if (typeof window.Razorpay !== "function") {
          fail("Razorpay Checkout did not load. Nothing was charged; check your connection and try again.");
          return;
        }
        btn.disabled = true;
        errEl.hidden = true;
        var rzp = new window.Razorpay({
          key: p.key, order_id: p.order_id, amount: p.amount, currency: p.currency,
          name: p.name, description: p.description,
          prefill: p.method ? { method: p.method } : {},
          handler: function (r) {
            back({ razorpay_payment_id: r.razorpay_payment_id, razorpay_order_id: r.razorpay_order_id,
              razorpay_signature: r.razorpay_signature });
          },
          modal: { ondismiss: function () { btn.disabled = false; } }
        });
        if (typeof rzp.on === "function") {
          rzp.on("payment.failed", function (r) {
            fail("The payment failed: " + ((r && r.error && r.error.description) || "declined") + ". You can try again.");
          });
        }
        rzp.open();
      });
    } else if (kind === "stripe_confirm") {
      var stripe = null, elements = null;
      var mount = function () {
        if (stripe) return true;
        if (typeof window.Stripe !== "function") return false;
        stripe = window.Stripe(p.publishable_key);
        elements = stripe.elements({ clientSecret: p.client_secret });
        elements.create("payment").mount("#stripe-element");
        return true;
      };
      // Stripe.js comes after this file; it has run by the load event.
      window.addEventListener("load", mount);
      btn.addEventListener("click", function () {
        if (!mount()) {
          fail("Stripe did not load. Nothing was charged; check your connection and try again.");
          return;
        }
        btn.disabled = true;
        errEl.hidden = true;
        stripe.confirmPayment({ elements: elements, confirmParams: { return_url: p.return_url } }).then(function (res) {
          if (res && res.error) fail(res.error.message || "The payment could not be confirmed.");
        });
      });
    }
  }

  function init(root) {
    autofollow();
    checkout();
    menu();
    tick();
    charts(root);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { init(document); });
  } else {
    init(document);
  }
  document.addEventListener("htmx:afterSettle", function (e) { init(e.target); });
})();
