/** Types for the `macaroon` npm package (3.x ships none), used by tests as an independent implementation. */
declare module "macaroon" {
  export interface Macaroon {
    readonly identifier: Uint8Array;
    readonly location: string;
    addFirstPartyCaveat(caveatId: string | Uint8Array): void;
    verify(rootKey: Uint8Array, check: (condition: string) => string | null, discharges?: Macaroon[]): void;
    exportBinary(): Uint8Array;
  }
  export function newMacaroon(params: {
    identifier: string | Uint8Array;
    location?: string;
    rootKey: string | Uint8Array;
    version?: 1 | 2;
  }): Macaroon;
  export function importMacaroon(obj: string | Uint8Array): Macaroon;
  export function bytesToBase64(bytes: Uint8Array): string;
  export function base64ToBytes(s: string): Uint8Array;
}
