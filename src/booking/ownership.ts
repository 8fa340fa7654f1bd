import { fail, type Result } from "./errors.ts";

/**
 * To an authenticated buyer (`buyerId`), another buyer's reservation does not exist: a refusal for
 * not owning it reads as not found, so reservation ids cannot be probed. A `userId` the caller
 * merely claimed (open mode) keeps its explicit refusal.
 */
export function hideFromOthers<T>(
  result: Result<T>,
  request: { reservationId: string; buyerId?: string },
): Result<T> {
  if (result.ok || request.buyerId === undefined || result.error.code !== "RESERVATION_NOT_OWNED")
    return result;
  return fail({ code: "RESERVATION_NOT_FOUND", reservationId: request.reservationId });
}
