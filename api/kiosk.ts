/**
 * The kiosk: one self-contained page (HTML, CSS, JS; no build step) that the
 * machine's touch screen shows at `/`. It uses only the customer routes:
 * menu with availability, order, pay by card token or cash, status polling,
 * pickup code entry, cancel. Orders and payments carry an `Idempotency-Key`,
 * one per attempt, sent again when the attempt is retried.
 */

/** The kiosk page for `machineId`. */
export function kioskPage(machineId: string): string {
  // JSON inside a <script>: escape "<" so no value can close the script element.
  const config = JSON.stringify({ machineId }).replaceAll("<", "\\u003c");
  return page.replace("/*CONFIG*/null", config);
}

const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Fornax pizza</title>
<style>
  :root { font-family: system-ui, sans-serif; color: #222; background: #fdf8f2; }
  body { margin: 0 auto; max-width: 52rem; padding: 1rem; }
  h1 { margin: 0 0 1rem; color: #b3361b; }
  section { background: #fff; border-radius: .75rem; padding: 1rem; margin-bottom: 1rem;
    box-shadow: 0 1px 3px #0002; }
  .menu { display: grid; grid-template-columns: repeat(auto-fill, minmax(14rem, 1fr)); gap: .75rem; }
  .pizza { border: 1px solid #ddd; border-radius: .5rem; padding: .75rem; display: flex;
    flex-direction: column; gap: .25rem; }
  .pizza.unavailable { opacity: .45; }
  .price { font-weight: bold; font-size: 1.2rem; }
  button { font-size: 1.05rem; padding: .6rem 1rem; border-radius: .5rem; border: 0;
    background: #b3361b; color: #fff; cursor: pointer; }
  button:disabled { background: #aaa; cursor: default; }
  button.secondary { background: #555; }
  input { font-size: 1.05rem; padding: .5rem; border: 1px solid #bbb; border-radius: .4rem; }
  .row { display: flex; gap: .5rem; flex-wrap: wrap; align-items: center; margin: .5rem 0; }
  .error { color: #b00020; min-height: 1.2em; }
  .code { font-size: 2rem; letter-spacing: .3rem; font-weight: bold; }
  [hidden] { display: none !important; }
</style>
</head>
<body>
<h1>Fornax pizza</h1>
<p class="error" id="error" role="alert"></p>

<section id="menu-section">
  <h2>Menu</h2>
  <div class="row"><label>E-mail for receipt (optional)
    <input id="email" type="email" autocomplete="email"></label></div>
  <div class="menu" id="menu">Loading…</div>
</section>

<section id="order-section" hidden>
  <h2>Your order</h2>
  <p>Order <span id="order-id"></span> — total <strong id="order-total"></strong></p>
  <p>Pickup code: <span class="code" id="pickup-code"></span></p>
  <p>Status: <strong id="order-status">PENDING</strong>
    <span id="order-queue"></span> <span id="order-ready"></span></p>

  <div id="pay-box">
    <h3>Pay</h3>
    <div class="row">
      <input id="card-token" value="tok_visa" aria-label="Card token">
      <button id="pay-card">Pay by card</button>
    </div>
    <div class="row" id="cash-buttons"><span>Insert cash:</span></div>
    <p id="cash-state"></p>
  </div>

  <div id="pickup-box" hidden>
    <h3>Pick up</h3>
    <div class="row">
      <input id="pickup-input" inputmode="numeric" maxlength="4" aria-label="Pickup code">
      <button id="pickup">Open the door</button>
    </div>
    <p id="pickup-result"></p>
  </div>

  <div class="row">
    <button class="secondary" id="cancel">Cancel order</button>
    <button class="secondary" id="new-order" hidden>New order</button>
  </div>
</section>

<script>
"use strict";
const CONFIG = /*CONFIG*/null;
const api = "/api/v1";
const cashDenominationsCents = [100, 200, 500, 1000, 2000, 5000];
const $ = (id) => document.getElementById(id);
const money = (cents) => (cents / 100).toFixed(2);
let current = null;
let pollTimer = null;

function showError(message) { $("error").textContent = message || ""; }

async function call(method, path, body, key) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (key) init.headers["idempotency-key"] = key;
  const res = await fetch(api + path, init);
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = new Error((data.error && data.error.message) || ("HTTP " + res.status));
    err.status = res.status;
    throw err;
  }
  return data;
}

// Orders and payments carry an idempotency key, one per attempt: a retry of the
// attempt (after a timeout or a lost connection) sends the same key, so the
// machine makes one order and counts one bill however often the request arrives.
const noAnswer = (err) => err.status === undefined || [502, 503, 504].includes(err.status);
// The order or card payment whose answer never came: tapping it again retries it.
let unanswered = null;

function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function act(path, body, tapRetries) {
  const text = JSON.stringify(body);
  const key = tapRetries && unanswered && unanswered.path === path && unanswered.text === text
    ? unanswered.key : newKey();
  for (let attempt = 1; ; attempt++) {
    try {
      const data = await call("POST", path, body, key);
      unanswered = null;
      return data;
    } catch (err) {
      if (noAnswer(err) && attempt < 3) {
        await new Promise((resolve) => setTimeout(resolve, 1000 * attempt));
        continue;
      }
      // A new bill is a new insert; a new tap on the same order or card is the same attempt.
      unanswered = noAnswer(err) && tapRetries ? { path, text, key } : null;
      throw err;
    }
  }
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

async function loadMenu() {
  try {
    const { pizzas } = await call("GET", "/machine/" + CONFIG.machineId + "/menu");
    const menu = $("menu");
    menu.replaceChildren();
    for (const p of pizzas) {
      const card = el("div", undefined, "pizza" + (p.available ? "" : " unavailable"));
      card.append(el("strong", p.name), el("span", p.description), el("span", p.size));
      card.append(el("span", p.toppings.join(", ")));
      if (p.allergens.length) card.append(el("small", "Allergens: " + p.allergens.join(", ")));
      card.append(el("span", p.calories + " kcal · " + Math.round(p.cookingTime / 60) + " min"));
      card.append(el("span", money(p.priceCents), "price"));
      const buy = el("button", p.available ? "Order" : "Sold out");
      buy.disabled = !p.available;
      buy.onclick = () => placeOrder(p.pizzaId);
      card.append(buy);
      menu.append(card);
    }
    showError("");
  } catch (err) {
    showError("Menu unavailable: " + err.message);
  }
}

async function placeOrder(pizzaId) {
  const email = $("email").value.trim();
  try {
    const o = await act("/machine/" + CONFIG.machineId + "/order",
      email ? { pizzaId, customerEmail: email } : { pizzaId }, true);
    current = o;
    $("order-id").textContent = o.orderId.slice(0, 8);
    $("order-total").textContent = money(o.totalAmountCents);
    $("pickup-code").textContent = o.pickupCode;
    $("menu-section").hidden = true;
    $("order-section").hidden = false;
    $("pay-box").hidden = false;
    $("pickup-box").hidden = true;
    $("new-order").hidden = true;
    $("cancel").hidden = false;
    $("cash-state").textContent = "";
    $("pickup-result").textContent = "";
    showError("");
    startPolling();
  } catch (err) {
    showError("Could not order: " + err.message);
    loadMenu();
  }
}

async function pay(method, paymentDetails) {
  if (!current) return;
  for (const b of document.querySelectorAll("#pay-box button")) b.disabled = true;
  try {
    const p = await act("/order/" + current.orderId + "/payment", { method, paymentDetails },
      method !== "CASH");
    if (method === "CASH") {
      $("cash-state").textContent = "Inserted " + money(p.insertedCents) + " of " +
        money(current.totalAmountCents) + (p.changeCents ? " — change " + money(p.changeCents) : "");
    }
    if (p.status === "FAILED") showError("Payment declined");
    else showError("");
    poll();
  } catch (err) {
    showError("Payment failed: " + err.message);
  } finally {
    for (const b of document.querySelectorAll("#pay-box button")) b.disabled = false;
  }
}

function startPolling() {
  stopPolling();
  poll();
  pollTimer = setInterval(poll, 2000);
}

function stopPolling() {
  if (pollTimer !== null) clearInterval(pollTimer);
  pollTimer = null;
}

async function poll() {
  if (!current) return;
  try {
    const s = await call("GET", "/order/" + current.orderId + "/status");
    $("order-status").textContent = s.status;
    $("order-queue").textContent = s.queuePosition !== null ? "· position " + s.queuePosition : "";
    $("order-ready").textContent = s.estimatedReadyTime !== null
      ? "· ready about " + new Date(s.estimatedReadyTime).toLocaleTimeString() : "";
    const unpaid = ["PENDING", "PAYMENT_PROCESSING", "PAYMENT_PENDING"].includes(s.status);
    $("pay-box").hidden = !unpaid;
    $("pickup-box").hidden = s.status !== "READY";
    const over = ["DISPENSED", "CANCELLED", "REFUNDED"].includes(s.status);
    $("cancel").hidden = over || !["PENDING", "PAYMENT_PENDING", "PAID"].includes(s.status);
    $("new-order").hidden = !over;
    if (s.pickupLocked) $("pickup-result").textContent = "Pickup locked: please call service";
    if (over) stopPolling();
  } catch (err) {
    showError("Status unavailable: " + err.message);
  }
}

async function pickup() {
  if (!current) return;
  try {
    const r = await call("POST", "/order/" + current.orderId + "/pickup",
      { pickupCode: $("pickup-input").value.trim() });
    $("pickup-result").textContent = r.success
      ? r.message : r.message + " (" + r.attemptsLeft + " attempts left)";
    poll();
  } catch (err) {
    $("pickup-result").textContent = err.message;
  }
}

async function cancel() {
  if (!current) return;
  try {
    await call("POST", "/order/" + current.orderId + "/cancel", { reason: "Cancelled at the kiosk" });
    poll();
  } catch (err) {
    showError("Could not cancel: " + err.message);
  }
}

function newOrder() {
  stopPolling();
  current = null;
  $("order-section").hidden = true;
  $("menu-section").hidden = false;
  loadMenu();
}

for (const cents of cashDenominationsCents) {
  const b = el("button", money(cents));
  b.onclick = () => pay("CASH", { denominationCents: cents });
  $("cash-buttons").append(b);
}
$("pay-card").onclick = () => pay("CARD", { token: $("card-token").value.trim() });
$("pickup").onclick = pickup;
$("cancel").onclick = cancel;
$("new-order").onclick = newOrder;
loadMenu();
</script>
</body>
</html>
`;
