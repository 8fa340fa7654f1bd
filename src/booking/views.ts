/** The shapes the API returns. Amounts are decimals, times ISO-8601 strings. */

export type SeatStatus = "AVAILABLE" | "HELD" | "SOLD";
export type ReservationStatus = "PENDING" | "CONFIRMED" | "EXPIRED" | "CANCELLED";

export type SessionView = {
  id: string;
  movieId: string;
  room: string;
  startsAt: string;
  price: number;
  rowsCount: number;
  seatsPerRow: number;
  totalSeats: number;
  createdAt: string;
};

export type SeatView = {
  id: string;
  row: string;
  number: number;
  label: string;
  /** The key of the seat's price category. */
  category: string;
  status: SeatStatus;
};

export type CategoryView = { key: string; name: string; price: number };

export type SeatCounts = { total: number; available: number; held: number; sold: number };

export type SessionDetailView = SessionView & {
  categories: CategoryView[];
  counts: SeatCounts;
  seats: SeatView[];
};

export type SeatStatusesView = {
  sessionId: string;
  counts: SeatCounts;
  seats: { id: string; status: SeatStatus }[];
};

export type ReservedSeatView = { id: string; row: string; number: number; label: string };

export type SaleSummaryView = { id: string; amount: number; paidAt: string };

export type ReservationView = {
  id: string;
  sessionId: string;
  userId: string;
  status: ReservationStatus;
  seatIds: string[];
  seats: ReservedSeatView[];
  totalPrice: number;
  expiresAt: string;
  createdAt: string;
  sale: SaleSummaryView | null;
};

export type PurchaseView = {
  saleId: string;
  reservationId: string;
  session: { id: string; movieId: string; room: string; startsAt: string };
  seats: string[];
  amount: number;
  paidAt: string;
};

export type Page<T> = { items: T[]; nextCursor: string | null };
