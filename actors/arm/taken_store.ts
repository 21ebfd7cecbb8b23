/**
 * The arm's record of pizzas taken from the pickup area, in the machine's
 * journal: an order that missed the `taken` event (or whose process was down
 * when it came) still learns from `arm.status` after a power loss that its
 * pizza was collected, so it is never refunded.
 */
import { type Journal, migrate } from "../../journal/journal.ts";
import { historyLength } from "./machine.ts";

const MIGRATIONS = [
  `CREATE TABLE arm_taken (order_id TEXT PRIMARY KEY, taken_at INTEGER NOT NULL);
   CREATE INDEX arm_taken_at ON arm_taken (taken_at);`,
];

/** Taken orders, journalled; the most recent `historyLength` are kept. */
export class TakenStore {
  /** Opens the arm's table in `db`, creating it on first use. */
  constructor(private readonly db: Journal) {
    migrate(db, "arm", MIGRATIONS);
  }

  /** The kept taken orders, oldest first. */
  recent(): string[] {
    const rows = this.db.prepare(
      "SELECT order_id FROM arm_taken ORDER BY taken_at DESC, order_id DESC LIMIT ?",
    ).all(historyLength) as { order_id: string }[];
    return rows.map((r) => r.order_id).reverse();
  }

  /** Records that the pizza of `orderId` was taken at `atMs`; a repeat changes nothing. */
  add(orderId: string, atMs: number): void {
    this.db.prepare("INSERT OR IGNORE INTO arm_taken (order_id, taken_at) VALUES (?, ?)").run(
      orderId,
      atMs,
    );
    this.db.prepare(
      `DELETE FROM arm_taken WHERE order_id NOT IN
       (SELECT order_id FROM arm_taken ORDER BY taken_at DESC, order_id DESC LIMIT ?)`,
    ).run(historyLength);
  }
}
