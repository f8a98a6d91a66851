/**
 * Monthly statements of an account key, read straight from the ledger so they always sum to it:
 * one line per request (its hold and settlement merged: what the request cost), per deposit and
 * per withdrawal. JSON and CSV carry the same lines and totals.
 *
 * A metered business key (a credit limit) is billed here: usage at its tier's discount, what was
 * paid in, and the amount due, what the key owes at the month's end (its balance below zero then).
 * Paying in at any time reduces what is owed first, because it is the same ledger account.
 */
import * as z from "zod";
import { Accounts, type Ledger } from "../ledger/index.js";
import type { AccountRow } from "./accounts.js";

export const StatementQuerySchema = z.object({
  month: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, "month must be YYYY-MM"),
  format: z.enum(["json", "csv"]).default("json"),
});

export const StatementLineSchema = z.object({
  date: z.string(),
  type: z.enum(["request", "deposit", "withdrawal", "other"]),
  ref: z.string().nullable(),
  memo: z.string().nullable(),
  /** signed: negative when the account paid */
  amount_msat: z.number().int(),
});

export const StatementSchema = z.object({
  account_id: z.string(),
  tier: z.string().nullable(),
  discount_pct: z.number(),
  /** metered: used on credit and billed here; prepaid: paid before use (never owes) */
  billing: z.enum(["metered", "prepaid"]),
  credit_limit_sats: z.number().int().nonnegative(),
  month: z.string(),
  lines: z.array(StatementLineSchema),
  totals: z.object({
    requests: z.number().int(),
    charged_msat: z.number().int(),
    deposited_msat: z.number().int(),
    withdrawn_msat: z.number().int(),
    /** sum of every line: the account's balance change over the month */
    net_msat: z.number().int(),
    /** the balance when the month began and when it ended (negative: owed) */
    opening_balance_msat: z.number().int(),
    closing_balance_msat: z.number().int(),
    /** what the key owes at the month's end (0 when its balance was not below zero) */
    amount_due_msat: z.number().int().nonnegative(),
  }),
});
export type Statement = z.infer<typeof StatementSchema>;

const REQUEST_KINDS = new Set(["hold", "settle"]);

function monthRange(month: string): [number, number] {
  const [y, m] = month.split("-").map(Number) as [number, number];
  return [Date.UTC(y, m - 1, 1), Date.UTC(y, m, 1)];
}

export async function buildStatement(
  ledger: Ledger,
  account: AccountRow,
  month: string,
  discountPct: number,
): Promise<Statement> {
  const [from, to] = monthRange(month);
  const lines: z.infer<typeof StatementLineSchema>[] = [];
  const requestLine = new Map<string, z.infer<typeof StatementLineSchema>>();
  for (const e of await ledger.entries(Accounts.user(account.id), from, to)) {
    if (REQUEST_KINDS.has(e.kind) && e.ref) {
      const line = requestLine.get(e.ref);
      if (line) {
        line.amount_msat += e.msat;
        line.memo = e.memo ?? line.memo;
        continue;
      }
    }
    const type = REQUEST_KINDS.has(e.kind)
      ? "request"
      : e.kind === "deposit"
        ? "deposit"
        : e.kind === "withdraw"
          ? "withdrawal"
          : "other";
    const line = {
      date: new Date(e.at).toISOString(),
      type,
      ref: e.ref,
      memo: e.memo,
      amount_msat: e.msat,
    } as const;
    const mutable = { ...line };
    lines.push(mutable);
    if (type === "request" && e.ref) requestLine.set(e.ref, mutable);
  }
  const sum = (t: string) => lines.filter((l) => l.type === t).reduce((s, l) => s + l.amount_msat, 0);
  const net = lines.reduce((s, l) => s + l.amount_msat, 0);
  // The balance at the month's end: today's, less everything posted since (read from the same books).
  const books = Accounts.user(account.id);
  const since = await ledger.entries(books, to, Number.MAX_SAFE_INTEGER);
  const closing = (await ledger.balance(books)) - since.reduce((s, e) => s + e.msat, 0);
  const creditLimit = account.tier ? account.credit_limit_sat : 0;
  return {
    account_id: account.id,
    tier: account.tier,
    discount_pct: discountPct,
    billing: creditLimit > 0 ? "metered" : "prepaid",
    credit_limit_sats: creditLimit,
    month,
    lines,
    totals: {
      requests: lines.filter((l) => l.type === "request").length,
      charged_msat: -sum("request"),
      deposited_msat: sum("deposit"),
      withdrawn_msat: -sum("withdrawal"),
      net_msat: net,
      opening_balance_msat: closing - net,
      closing_balance_msat: closing,
      amount_due_msat: Math.max(0, -closing),
    },
  };
}

const csvCell = (v: string | number | null) => {
  const s = v === null ? "" : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/** The same statement as CSV: one row per line, then a total row. */
export function statementCsv(s: Statement): string {
  const rows = [["date", "type", "ref", "memo", "amount_msat"]];
  for (const l of s.lines) rows.push([l.date, l.type, l.ref ?? "", l.memo ?? "", String(l.amount_msat)]);
  rows.push([
    "total",
    `${s.totals.requests} requests`,
    "",
    `charged ${s.totals.charged_msat}`,
    String(s.totals.net_msat),
  ]);
  if (s.billing === "metered") rows.push(["amount due", "", "", "", String(s.totals.amount_due_msat)]);
  return rows.map((r) => r.map(csvCell).join(",")).join("\n") + "\n";
}
