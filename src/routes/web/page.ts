/**
 * The seat-map page: HTML and CSS here, the script bundled at build time (web-assets.ts). Nothing
 * is fetched from elsewhere, so the page works offline and on every runtime the app runs on.
 */
export function pageHtml(scriptUrl: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Seats</title>
<style>${CSS}</style>
</head>
<body>
<header>
  <h1>Seats</h1>
  <form id="who" class="row" onsubmit="return false">
    <label for="token">Bearer token <small>(when auth is on)</small></label>
    <input id="token" type="password" autocomplete="off" spellcheck="false">
    <label for="user">User id <small>(open mode)</small></label>
    <input id="user" value="guest" autocomplete="off">
  </form>
</header>
<main>
  <p id="status" class="status" role="status" aria-live="polite"></p>
  <section aria-labelledby="sessions-title">
    <h2 id="sessions-title">Sessions <button id="refresh" type="button">Refresh</button></h2>
    <ul id="sessions"></ul>
  </section>
  <section id="session-panel" aria-labelledby="session-title" hidden>
    <h2 id="session-title"></h2>
    <p><span id="counts"></span>. <span id="live"></span></p>
    <ul id="legend" class="legend" aria-label="Legend"></ul>
    <p class="screen" aria-hidden="true">Screen</p>
    <div id="seat-map" class="seat-map" role="group" aria-label="Seat map: choose seats to hold"></div>
    <div class="row">
      <button id="hold-selected" type="button" disabled>Hold selected seats</button>
      <form id="best-form" class="row">
        <label for="best-quantity">Best available</label>
        <input id="best-quantity" type="number" min="1" max="10" value="2" required>
        <label for="best-category">Category</label>
        <select id="best-category"></select>
        <button type="submit">Hold best</button>
      </form>
    </div>
    <section id="hold-panel" aria-labelledby="hold-title" hidden>
      <h3 id="hold-title">Your hold</h3>
      <p><span id="hold-summary"></span> <strong id="countdown" aria-live="off"></strong></p>
      <div class="row">
        <button id="extend" type="button">Extend by 2 minutes</button>
        <button id="pay" type="button">Pay</button>
        <button id="cancel" type="button">Cancel</button>
      </div>
    </section>
  </section>
  <section aria-labelledby="organiser-title">
    <h2 id="organiser-title">New session <small>(organisers)</small></h2>
    <form id="organiser-form" class="grid-form">
      <label for="new-movie">Movie</label><input id="new-movie" required value="dune-part-two">
      <label for="new-room">Room</label><input id="new-room" required value="Room 1">
      <label for="new-starts">Starts at</label><input id="new-starts" type="datetime-local" required value="2026-12-24T20:00">
      <label for="new-price">Price of other seats</label><input id="new-price" type="number" min="0" step="0.01" value="12.50">
      <label for="new-rows">Rows</label><input id="new-rows" type="number" min="1" max="100" value="8" required>
      <label for="new-seats">Seats per row</label><input id="new-seats" type="number" min="1" max="100" value="12" required>
      <label for="new-categories">Categories, one a line: <code>key, name, price, rows or seats</code></label>
      <textarea id="new-categories" rows="3" aria-describedby="categories-help">premium, Premium, 18, D E</textarea>
      <p id="categories-help" class="help">For example <code>vip, VIP, 25, A1-A6 B3</code>. Seats no line names get the price above.</p>
      <button type="submit">Create session</button>
    </form>
  </section>
</main>
<script src="${scriptUrl}" defer></script>
</body>
</html>
`;
}

const CSS = `
:root { font-family: system-ui, sans-serif; color: #111; background: #fff; line-height: 1.4; }
body { margin: 0 auto; max-width: 72rem; padding: 0 1rem 3rem; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 1rem; border-bottom: 1px solid #767676; }
h1 { margin: .5rem 0; } h2 { margin-top: 1.5rem; }
.row { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; margin: .5rem 0; }
button, input, select, textarea { font: inherit; color: #111; }
button { background: #f1f1f1; border: 1px solid #595959; border-radius: 4px; padding: .3rem .7rem; cursor: pointer; }
button:disabled { color: #595959; cursor: not-allowed; }
:focus-visible { outline: 3px solid #1a4fd6; outline-offset: 2px; }
.status { min-height: 1.4em; font-weight: 600; color: #0b4a1d; } .status.error { color: #a00000; }
#sessions button { background: none; border: none; color: #0b4fa8; text-decoration: underline; padding: .2rem 0; }
.screen { text-align: center; background: #e6e6e6; color: #333; margin: 1rem 0 .5rem; letter-spacing: .3em; }
.seat-map { display: grid; gap: .25rem; overflow-x: auto; }
.row-label { align-self: center; font-weight: 600; }
.seat { min-width: 2.2em; padding: .3rem 0; font-size: .85rem; border: 1px solid #595959; }
.cat-0 { background: #d7ecff; } .cat-1 { background: #eadcff; } .cat-2 { background: #d4f3da; }
.cat-3 { background: #fff0b8; } .cat-4 { background: #ffd8cf; } .cat-5 { background: #e3e8ef; }
.seat.held { background: #6b4d00; color: #fff; }
.seat.sold { background: #2b2b2b; color: #fff; text-decoration: line-through; }
.seat.mine { background: #0b5cad; color: #fff; font-weight: 700; }
.seat.selected { background: #ffd633; color: #000; outline: 3px solid #000; }
.legend { display: flex; flex-wrap: wrap; gap: 1rem; list-style: none; padding: 0; }
.swatch { display: inline-block; width: 1em; height: 1em; border: 1px solid #595959; margin-right: .3em; vertical-align: -.15em; }
.swatch.held { background: #6b4d00; } .swatch.sold { background: #2b2b2b; } .swatch.mine { background: #0b5cad; }
.swatch.selected { background: #ffd633; }
#hold-panel { border: 2px solid #0b5cad; padding: .5rem 1rem; margin-top: 1rem; }
.grid-form { display: grid; grid-template-columns: max-content minmax(12rem, 24rem); gap: .4rem .8rem; align-items: center; }
.grid-form button, .grid-form .help { grid-column: 2; } .help { margin: 0; font-size: .9rem; color: #333; }
`;
