// The live scenario planner: the optimizer's curves and constraint box come from the
// embedded JSON; every figure is recomputed the way optimize.py scenario= computes it.
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("planner-data").textContent);
  var H = D.horizon, units = D.units, chans = D.channels;
  var rows = document.querySelectorAll("#planner-table tbody tr");
  var fmt = function (v) {
    return v.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  };
  var signed = function (v) { return (v > 0.005 ? "+" : "") + fmt(v); };
  var cents = function (v) { return Math.round(v * 100) / 100; };
  // daily Hill curve beta * r / (1 + r), r = (s / k)^a, over the horizon
  var conv = function (u, x) {
    var r = Math.pow(Math.max(x / H, 0) / u.k, u.a);
    return H * u.beta * r / (1 + r);
  };
  var spend = units.map(function (u) { return u.plan; });
  var total = function (key) {
    return units.reduce(function (acc, u) { return acc + conv(u, u[key]); }, 0);
  };
  var planTotal = total("plan"), curTotal = total("current_scaled");

  function violations() {
    var out = [], eps = 0.005, sum = 0, csum = chans.map(function () { return 0; });
    units.forEach(function (u, i) {
      var x = spend[i];
      sum += x;
      csum[u.ch] += x;
      if (x < u.lo - eps) out.push(u.name + ": " + fmt(x) + " below its floor " + fmt(u.lo) + " (" + u.lo_src + ")");
      if (x > u.hi + eps) out.push(u.name + ": " + fmt(x) + " above its cap " + fmt(u.hi) + " (" + u.hi_src + ")");
    });
    if (Math.abs(sum - D.total) > eps) out.unshift("budget.total: spends sum to " + fmt(sum) + ", not " + fmt(D.total));
    chans.forEach(function (c, j) {
      if (csum[j] < c.lo - eps) out.push("channel " + c.name + ": " + fmt(csum[j]) + " below its floor " + fmt(c.lo) + " (" + c.lo_src + ")");
      if (csum[j] > c.hi + eps) out.push("channel " + c.name + ": " + fmt(csum[j]) + " above its cap " + fmt(c.hi) + " (" + c.hi_src + ")");
    });
    return out;
  }

  function render() {
    var tc = 0, ts = 0, tr = 0;
    units.forEach(function (u, i) {
      var row = rows[i], c = conv(u, spend[i]);
      tc += c; ts += spend[i]; tr += u.value === null ? 0 : c * u.value;
      row.querySelector(".sl").value = spend[i];
      row.querySelector(".nb").value = spend[i].toFixed(2);
      row.querySelector(".conv").textContent = fmt(c);
      row.querySelector(".conv").dataset.value = c;
      row.querySelector(".dplan").textContent = signed(c - conv(u, u.plan));
      row.querySelector(".dcur").textContent = signed(c - conv(u, u.current_scaled));
    });
    var set = function (id, v, text) {
      var el = document.getElementById(id);
      if (!el) return;
      el.textContent = text;
      el.dataset.value = v;
    };
    set("sc-spend", cents(ts), fmt(ts));
    set("sc-conv", tc, fmt(tc));
    set("sc-dplan", tc - planTotal, signed(tc - planTotal));
    set("sc-dcur", tc - curTotal, signed(tc - curTotal));
    set("sc-rev", tr, fmt(tr));
    var v = violations(), box = document.getElementById("sc-violations");
    box.replaceChildren();
    if (v.length) {
      var p = document.createElement("b");
      p.textContent = "Broken constraints:";
      var ul = document.createElement("ul");
      v.forEach(function (t) { var li = document.createElement("li"); li.textContent = t; ul.appendChild(li); });
      box.appendChild(p);
      box.appendChild(ul);
    }
    box.hidden = v.length === 0;
    document.getElementById("sc-ok").hidden = v.length > 0;
  }

  rows.forEach(function (row, i) {
    var onInput = function (ev) {
      var x = parseFloat(ev.target.value);
      spend[i] = isFinite(x) && x > 0 ? cents(x) : 0;
      render();
    };
    row.querySelector(".sl").addEventListener("input", onInput);
    row.querySelector(".nb").addEventListener("change", onInput);
  });
  var reset = function (key) {
    return function () { spend = units.map(function (u) { return cents(u[key]); }); render(); };
  };
  document.getElementById("btn-plan").addEventListener("click", reset("plan"));
  document.getElementById("btn-current").addEventListener("click", reset("current"));
  document.getElementById("btn-rescale").addEventListener("click", function () {
    var sum = spend.reduce(function (a, b) { return a + b; }, 0);
    if (sum <= 0) return;
    spend = spend.map(function (x) { return cents(x * D.total / sum); });
    // put the last cents of rounding on the largest campaign so the total is exact
    var big = spend.indexOf(Math.max.apply(null, spend));
    var left = Math.round(D.total * 100) - spend.reduce(function (a, b) { return a + Math.round(b * 100); }, 0);
    spend[big] = (Math.round(spend[big] * 100) + left) / 100;
    render();
  });
  render();
})();
