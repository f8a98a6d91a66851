/**
 * Everything the browser wallet owns, in one localStorage record written whole on every change:
 * a write is atomic, so proofs, counters and in-flight payments never disagree after a crash or a
 * closed tab. Nothing leaves the page before the record that describes it is saved.
 */

export interface SavedProof {
  id: string;
  amount: number;
  secret: string;
  C: string;
  dleq?: { e: string; s: string; r?: string };
}

/** A prompt paid with `token`: kept until its change (or the proof it was spent) is seen. */
export interface InFlight {
  requestId: string;
  token: string;
  amount: number;
  createdAt: number;
}

export interface SavedQuote {
  quote: string;
  amount: number;
  request: string;
  expiry: number | null;
}

export interface VaultData {
  version: 1;
  /** BIP-39 phrase: every secret is derived from it (NUT-13), so it restores the wallet */
  mnemonic: string;
  mint: string;
  /** next NUT-13 counter per keyset */
  counters: Record<string, number>;
  proofs: SavedProof[];
  /** tokens this page owns but has not swapped into its own proofs yet (change, pasted, refunds) */
  inbox: string[];
  inFlight: InFlight[];
  quotes: SavedQuote[];
  /** set while the mint may be signing outputs for us that are not saved yet (cleared with them) */
  signing?: boolean;
  /** the last "withdraw all" token, shown until the user starts over */
  lastWithdrawal?: { token: string; amount: number; at: number };
}

const KEY = "owlrun-chat/wallet/v1";

export class Vault {
  private constructor(
    private readonly storage: Storage,
    public data: VaultData,
  ) {}

  static load(storage: Storage): Vault | undefined {
    const raw = storage.getItem(KEY);
    if (!raw) return undefined;
    return new Vault(storage, JSON.parse(raw) as VaultData);
  }

  static create(storage: Storage, mnemonic: string, mint: string): Vault {
    const v = new Vault(storage, {
      version: 1,
      mnemonic,
      mint,
      counters: {},
      proofs: [],
      inbox: [],
      inFlight: [],
      quotes: [],
    });
    v.save();
    return v;
  }

  /** Applies a change and persists it before returning (throws if storage is full: nothing sent yet). */
  update(change: (d: VaultData) => void): void {
    const next = structuredClone(this.data);
    change(next);
    this.storage.setItem(KEY, JSON.stringify(next));
    this.data = next;
  }

  private save() {
    this.storage.setItem(KEY, JSON.stringify(this.data));
  }

  balance(): number {
    return this.data.proofs.reduce((s, p) => s + p.amount, 0);
  }
}
