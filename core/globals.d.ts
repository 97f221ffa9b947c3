// The few globals core may use: present in browsers, Node and workers alike. Nothing else
// runtime-specific may appear in core (no DOM, no node:*).

declare function queueMicrotask(callback: () => void): void;
declare function btoa(data: string): string;
declare function atob(data: string): string;
declare class TextEncoder {
  encode(input?: string): Uint8Array;
}
declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean });
  decode(input?: Uint8Array, options?: { stream?: boolean }): string;
}
