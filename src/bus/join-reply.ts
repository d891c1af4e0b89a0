import type { HistoryEntry } from "../ipc.js";
import type { Gap, JoinReply, Resume } from "./bus.js";

export type Position = { offset: number; epoch: string };

/**
 * Whether answering `resume` at `pos` needs the history after `since` (an epoch that matches, or none, and
 * something published since).
 */
export function needsHistory(pos: Position, resume: Resume | null): resume is Resume {
  return (
    resume !== null && (resume.epoch === null || resume.epoch === pos.epoch) && resume.since < pos.offset
  );
}

/**
 * A subscribe's answer at its join point `pos`. `entries`: the kept messages after `since` (any order of holes),
 * or null when history could not be read. Pure: both buses answer through it.
 */
export function joinReply(pos: Position, resume: Resume | null, entries: HistoryEntry[] | null): JoinReply {
  const reply = (history: HistoryEntry[], gap: Gap | null): JoinReply => ({
    offset: pos.offset,
    epoch: pos.epoch,
    history,
    gap,
    recovered: resume !== null && gap === null,
  });
  if (resume === null) return reply([], null);
  const { since, epoch } = resume;
  if (epoch !== null && epoch !== pos.epoch) {
    return reply([], {
      reason: "epoch_mismatch",
      message: `the channel's numbering changed (epoch ${pos.epoch}, not ${epoch}): messages after offset ${since} may be lost`,
    });
  }
  if (since > pos.offset) {
    return reply([], {
      reason: "offset_ahead",
      message: `offset ${since} is above the channel's offset ${pos.offset}: it belongs to another numbering`,
    });
  }
  if (since === pos.offset) return reply([], null);
  if (entries === null) {
    return reply([], {
      reason: "history_unavailable",
      message: `history could not be read: messages after offset ${since} may be lost`,
    });
  }
  // The contiguous run that ends at the join point: what is left when history no longer reaches back.
  const byOffset = new Map<number, string>();
  for (const [offset, dataJson] of entries)
    if (offset > since && offset <= pos.offset) byOffset.set(offset, dataJson);
  let first = pos.offset + 1;
  while (first - 1 > since && byOffset.has(first - 1)) first -= 1;
  const history: HistoryEntry[] = [];
  for (let o = first; o <= pos.offset; o++) history.push([o, byOffset.get(o) as string]);
  if (first === since + 1) return reply(history, null);
  return reply(history, {
    reason: "history_trimmed",
    message: `messages after offset ${since} are no longer in history (it starts after ${first - 1})`,
  });
}
