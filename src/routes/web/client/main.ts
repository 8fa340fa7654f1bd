/**
 * The seat-map page's script (bundled by scripts/web-assets.ts into web-assets.ts and served by
 * the app at /app.js). It uses only the public API: sessions, seat maps with their live stream
 * (or ETag polling where no stream is served), holds, extension, payment and cancellation.
 */

type Category = { key: string; name: string; price: number };
type Seat = { id: string; row: string; number: number; label: string; category: string; status: string };
type Session = {
  id: string;
  movieId: string;
  room: string;
  startsAt: string;
  price: number;
  seatsPerRow: number;
  categories: Category[];
  seats: Seat[];
  counts: { total: number; available: number; held: number; sold: number };
};
type Reservation = {
  id: string;
  status: string;
  seatIds: string[];
  seats: { label: string }[];
  totalPrice: number;
  expiresAt: string;
};
type Problem = { code?: string; detail?: string };

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const state: {
  session?: Session;
  statuses: Map<string, string>;
  selected: Set<string>;
  hold?: Reservation;
  stream?: EventSource;
  poll?: ReturnType<typeof setInterval>;
  etag?: string;
  countdown?: ReturnType<typeof setInterval>;
} = { statuses: new Map(), selected: new Set() };

function say(message: string, isError = false): void {
  const status = $("status");
  status.textContent = message;
  status.className = isError ? "status error" : "status";
}

function money(amount: number): string {
  return amount.toFixed(2);
}

function headers(json = false): Record<string, string> {
  const result: Record<string, string> = {};
  const token = $<HTMLInputElement>("token").value.trim();
  if (token) result.authorization = `Bearer ${token}`;
  if (json) result["content-type"] = "application/json";
  return result;
}

/** The user field, for open mode; with a token the server takes the buyer from it. */
function userId(): string | undefined {
  const value = $<HTMLInputElement>("user").value.trim();
  return value === "" ? undefined : value;
}

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(path, {
    method,
    headers: headers(body !== undefined),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const parsed = text ? (JSON.parse(text) as T & Problem) : ({} as T & Problem);
  if (!response.ok) throw new Error(parsed.detail ?? `${response.status} ${response.statusText}`);
  return parsed;
}

async function loadSessions(): Promise<void> {
  const page = await api<{ items: Session[] }>("GET", "/sessions?limit=50");
  const list = $("sessions");
  list.replaceChildren();
  for (const session of page.items) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = `${session.movieId} - ${session.room} - ${new Date(session.startsAt).toLocaleString()}`;
    button.addEventListener("click", () => void openSession(session.id));
    item.append(button);
    list.append(item);
  }
  if (page.items.length === 0) list.textContent = "No sessions yet: create one below.";
}

async function openSession(id: string): Promise<void> {
  stopLive();
  const session = await api<Session>("GET", `/sessions/${id}`);
  state.session = session;
  state.statuses = new Map(session.seats.map((seat) => [seat.id, seat.status]));
  state.selected.clear();
  history.replaceState(null, "", `?session=${id}`);
  $("session-title").textContent =
    `${session.movieId}, ${session.room}, ${new Date(session.startsAt).toLocaleString()}`;
  const category = $<HTMLSelectElement>("best-category");
  category.replaceChildren(new Option("Any category", ""));
  for (const c of session.categories) category.append(new Option(`${c.name} (${money(c.price)})`, c.key));
  $("session-panel").hidden = false;
  renderLegend();
  renderMap();
  startLive(id);
}

function categoryIndex(key: string): number {
  return Math.max(0, state.session?.categories.findIndex((c) => c.key === key) ?? 0) % 6;
}

function renderLegend(): void {
  const legend = $("legend");
  legend.replaceChildren();
  for (const c of state.session?.categories ?? []) {
    const item = document.createElement("li");
    item.innerHTML = `<span class="swatch cat-${categoryIndex(c.key)}"></span>`;
    item.append(`${c.name}: ${money(c.price)}`);
    legend.append(item);
  }
  for (const [cls, text] of [
    ["held", "Held"],
    ["sold", "Sold"],
    ["mine", "Your hold"],
    ["selected", "Selected"],
  ]) {
    const item = document.createElement("li");
    item.innerHTML = `<span class="swatch ${cls}"></span>`;
    item.append(text as string);
    legend.append(item);
  }
}

function renderMap(): void {
  const session = state.session;
  if (!session) return;
  const map = $("seat-map");
  map.replaceChildren();
  map.style.gridTemplateColumns = `2.5em repeat(${session.seatsPerRow}, minmax(2.2em, 1fr))`;
  const prices = new Map(session.categories.map((c) => [c.key, c]));
  const mine = new Set(state.hold?.status === "PENDING" ? state.hold.seatIds : []);
  let row = "";
  for (const seat of session.seats) {
    if (seat.row !== row) {
      row = seat.row;
      const label = document.createElement("span");
      label.className = "row-label";
      label.textContent = row;
      label.setAttribute("aria-hidden", "true");
      map.append(label);
    }
    const status = state.statuses.get(seat.id) ?? seat.status;
    const button = document.createElement("button");
    button.type = "button";
    button.className = `seat cat-${categoryIndex(seat.category)}`;
    button.textContent = String(seat.number);
    button.dataset.seatId = seat.id;
    button.dataset.label = seat.label;
    button.dataset.status = status;
    const category = prices.get(seat.category);
    const shown = mine.has(seat.id) ? "held by you" : status.toLowerCase();
    button.setAttribute(
      "aria-label",
      `${seat.label}, ${category?.name ?? seat.category} ${money(category?.price ?? 0)}, ${shown}`,
    );
    if (mine.has(seat.id)) button.classList.add("mine");
    else if (status === "HELD") button.classList.add("held");
    else if (status === "SOLD") button.classList.add("sold");
    const selectable = status === "AVAILABLE";
    button.disabled = !selectable && !mine.has(seat.id);
    button.setAttribute("aria-pressed", String(state.selected.has(seat.id)));
    if (state.selected.has(seat.id)) button.classList.add("selected");
    button.addEventListener("click", () => {
      if (!selectable) return;
      if (state.selected.has(seat.id)) state.selected.delete(seat.id);
      else state.selected.add(seat.id);
      renderMap();
      (document.querySelector(`[data-seat-id="${seat.id}"]`) as HTMLElement | null)?.focus();
    });
    map.append(button);
  }
  const counts = { available: 0, held: 0, sold: 0 };
  for (const status of state.statuses.values()) {
    if (status === "AVAILABLE") counts.available++;
    else if (status === "HELD") counts.held++;
    else counts.sold++;
  }
  $("counts").textContent = `${counts.available} available, ${counts.held} held, ${counts.sold} sold`;
  $<HTMLButtonElement>("hold-selected").disabled = state.selected.size === 0;
}

function applyStatuses(seats: { id: string; status: string }[]): void {
  for (const seat of seats) {
    state.statuses.set(seat.id, seat.status);
    if (seat.status !== "AVAILABLE") state.selected.delete(seat.id);
  }
  renderMap();
}

/** Live changes from the stream; where the instance serves none, the light map polled with its ETag. */
function startLive(id: string): void {
  const stream = new EventSource(`/sessions/${id}/stream`);
  state.stream = stream;
  let opened = false;
  stream.addEventListener("open", () => {
    opened = true;
    $("live").textContent = "Live updates: on";
  });
  const onSeats = (event: MessageEvent<string>) => applyStatuses(JSON.parse(event.data).seats);
  stream.addEventListener("snapshot", onSeats as EventListener);
  stream.addEventListener("change", onSeats as EventListener);
  stream.addEventListener("error", () => {
    if (opened) return; // EventSource reconnects by itself, resuming from the last event id.
    stream.close();
    startPolling(id);
  });
}

function startPolling(id: string): void {
  $("live").textContent = "Live updates: polling every second";
  const poll = async () => {
    const response = await fetch(`/sessions/${id}/seats`, {
      headers: state.etag ? { "if-none-match": state.etag } : {},
    });
    if (response.status === 304 || !response.ok) return;
    state.etag = response.headers.get("etag") ?? undefined;
    applyStatuses(((await response.json()) as { seats: { id: string; status: string }[] }).seats);
  };
  state.poll = setInterval(() => void poll().catch(() => undefined), 1_000);
}

function stopLive(): void {
  state.stream?.close();
  state.stream = undefined;
  clearInterval(state.poll);
  state.etag = undefined;
}

function showHold(hold: Reservation | undefined): void {
  state.hold = hold;
  clearInterval(state.countdown);
  const panel = $("hold-panel");
  panel.hidden = hold === undefined;
  if (!hold) {
    renderMap();
    return;
  }
  $("hold-summary").textContent =
    `${hold.status}: ${hold.seats.map((s) => s.label).join(", ")}, total ${money(hold.totalPrice)}`;
  const live = hold.status === "PENDING";
  for (const id of ["extend", "pay", "cancel"]) $<HTMLButtonElement>(id).disabled = !live;
  const tick = () => {
    const left = Math.max(0, Math.round((Date.parse(hold.expiresAt) - Date.now()) / 1000));
    $("countdown").textContent = live ? `${left} s left` : "";
    if (live && left === 0) {
      clearInterval(state.countdown);
      $("countdown").textContent = "expired";
      for (const id of ["extend", "pay", "cancel"]) $<HTMLButtonElement>(id).disabled = true;
    }
  };
  tick();
  if (live) state.countdown = setInterval(tick, 1_000);
  renderMap();
}

async function act(work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (error) {
    say((error as Error).message, true);
  }
}

function wire(): void {
  $("token").addEventListener("change", () => void act(loadSessions));
  $("refresh").addEventListener("click", () => void act(loadSessions));
  $("hold-selected").addEventListener("click", () =>
    act(async () => {
      const hold = await api<Reservation>("POST", "/reservations", {
        userId: userId(),
        seatIds: [...state.selected],
      });
      state.selected.clear();
      applyStatuses(hold.seatIds.map((id) => ({ id, status: "HELD" })));
      showHold(hold);
      say(`Held ${hold.seats.map((s) => s.label).join(", ")}.`);
    }),
  );
  $("best-form").addEventListener("submit", (event) => {
    event.preventDefault();
    void act(async () => {
      const quantity = Number($<HTMLInputElement>("best-quantity").value);
      const category = $<HTMLSelectElement>("best-category").value || undefined;
      const hold = await api<Reservation>("POST", "/reservations", {
        userId: userId(),
        sessionId: state.session?.id,
        quantity,
        category,
      });
      applyStatuses(hold.seatIds.map((id) => ({ id, status: "HELD" })));
      showHold(hold);
      say(`Held the best ${quantity}: ${hold.seats.map((s) => s.label).join(", ")}.`);
    });
  });
  const onHold = (path: string, body: Record<string, unknown>, done: (hold: Reservation) => string) =>
    act(async () => {
      if (!state.hold) return;
      const hold = await api<Reservation>("POST", `/reservations/${state.hold.id}/${path}`, {
        userId: userId(),
        ...body,
      });
      showHold(hold);
      say(done(hold));
    });
  $("extend").addEventListener("click", () =>
    onHold(
      "extend",
      { seconds: 120 },
      (hold) => `Extended until ${new Date(hold.expiresAt).toLocaleTimeString()}.`,
    ),
  );
  $("pay").addEventListener("click", () =>
    onHold("pay", {}, (hold) => {
      applyStatuses(hold.seatIds.map((id) => ({ id, status: "SOLD" })));
      return `Paid ${money(hold.totalPrice)}: the seats are yours.`;
    }),
  );
  $("cancel").addEventListener("click", () =>
    onHold("cancel", {}, (hold) => {
      applyStatuses(hold.seatIds.map((id) => ({ id, status: "AVAILABLE" })));
      return "Hold cancelled.";
    }),
  );
  $("organiser-form").addEventListener("submit", (event) => {
    event.preventDefault();
    void act(async () => {
      const value = (id: string) => $<HTMLInputElement>(id).value.trim();
      const categories = value("new-categories")
        .split("\n")
        .map((line) => line.trim())
        .filter(Boolean)
        .map((line) => {
          const [key = "", name = "", price = "", rows = ""] = line.split(",").map((part) => part.trim());
          const covers = rows.split(/\s+/).filter(Boolean);
          return {
            key,
            name,
            price: Number(price),
            ...(covers.length
              ? { rows: covers.filter((r) => /^[A-Z]+$/.test(r)), seats: covers.filter((r) => /\d/.test(r)) }
              : {}),
          };
        });
      const session = await api<Session>("POST", "/sessions", {
        movieId: value("new-movie"),
        room: value("new-room"),
        startsAt: new Date(value("new-starts")).toISOString(),
        price: value("new-price") === "" ? undefined : Number(value("new-price")),
        rowsCount: Number(value("new-rows")),
        seatsPerRow: Number(value("new-seats")),
        ...(categories.length ? { categories } : {}),
      });
      say(`Created session ${session.movieId} with ${session.seats.length} seats.`);
      await loadSessions();
      await openSession(session.id);
    });
  });
}

wire();
void act(async () => {
  await loadSessions();
  const id = new URLSearchParams(location.search).get("session");
  if (id) await openSession(id);
});
