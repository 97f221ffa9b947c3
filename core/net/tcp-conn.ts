// One TCP connection as the host's end of it (RFC 9293): the gateway terminates each of the
// guest's connections here and carries the bytes to a host socket. Sliding window with window
// scaling (RFC 7323), retransmission timeout (RFC 6298), slow start, congestion avoidance and
// NewReno fast recovery (RFC 5681, RFC 6582), zero-window probes, FIN/RST in every state.
// Out-of-order segments wait in a queue bounded by the window, and a gap is answered at once
// with a duplicate ACK.
// Sending to the host is flow-controlled by the caller's backlog (the host socket's unsent
// bytes), which shrinks the window advertised to the guest.

import {
  seqAdd,
  seqDiff,
  seqGe,
  seqGt,
  seqLe,
  seqLt,
  TCP_FLAG,
  type TcpSegment,
  type TcpSegmentOut,
} from "./tcp.js";
import type { TimerHandle, Timers } from "./timers.js";

export type TcpState =
  | "listen"
  | "syn-sent"
  | "syn-received"
  | "established"
  | "fin-wait-1"
  | "fin-wait-2"
  | "close-wait"
  | "closing"
  | "last-ack"
  | "time-wait"
  | "closed";

/** Why a connection ended: both FINs exchanged, the peer's RST, our abort, or no answer. */
export type TcpCloseReason = "closed" | "reset" | "refused" | "aborted" | "timeout";

export interface TcpEvents {
  /** The three-way handshake finished. */
  connected?(): void;
  /** In-order bytes from the peer. The array is the caller's to keep. */
  data?(bytes: Uint8Array): void;
  /** The peer sent FIN: no more data will come. */
  end?(): void;
  /** The send buffer fell to half after write() returned false. */
  drain?(): void;
  /** The connection is gone; called once. */
  close?(reason: TcpCloseReason): void;
}

export interface TcpConnectionOptions {
  timers: Timers;
  /** Puts one segment on the wire (the caller adds ports, addresses, IP and Ethernet). */
  output(segment: TcpSegmentOut): void;
  events?: TcpEvents;
  /** The largest segment we accept, advertised in our SYN: MTU 1500 less 40. */
  mss?: number;
  /** Bytes the peer may send ahead of what the consumer took. */
  receiveWindow?: number;
  /** Bytes write() queues before it asks the writer to wait. */
  sendBuffer?: number;
  /** Bytes handed to the consumer that it has not passed on yet; closes the window. */
  backlog?(): number;
  /** Initial sequence number; random if absent. */
  iss?: number;
  /** RFC 6928's initial window, in segments. */
  initialWindow?: number;
  /** An upper bound on the congestion window, in segments (a NIC with a small ring). */
  maxWindow?: number;
  /** How long a lone segment waits for a second before it is acknowledged. */
  ackDelayMs?: number;
  /** How long TIME-WAIT keeps the connection to re-acknowledge a repeated FIN. */
  timeWaitMs?: number;
  minRtoMs?: number;
  maxRtoMs?: number;
  /** Retransmissions of one segment before the connection is given up. */
  maxRetries?: number;
  /** Retransmissions of a SYN before connecting is given up. */
  maxSynRetries?: number;
}

const DEFAULTS = {
  mss: 1460,
  receiveWindow: 256 * 1024,
  sendBuffer: 256 * 1024,
  initialWindow: 10,
  maxWindow: 1 << 20,
  ackDelayMs: 10,
  timeWaitMs: 2000,
  minRtoMs: 200,
  maxRtoMs: 30_000,
  initialRtoMs: 1000,
  maxRetries: 12,
  maxSynRetries: 5,
} as const;

/** The smallest MSS we honour: a peer's absurd MSS must not make us send byte by byte. */
const MIN_MSS = 64;
/** Segments the out-of-order queue holds at most (its bytes are bounded by the window). */
const MAX_OUT_OF_ORDER = 512;
/** RFC 9293 §3.7.1: without the option, the peer takes 536. */
const DEFAULT_PEER_MSS = 536;

/** A connection to a peer, either side of the handshake. */
export class TcpConnection {
  #state: TcpState = "closed";
  readonly #timers: Timers;
  readonly #output: (segment: TcpSegmentOut) => void;
  #events: TcpEvents;
  readonly #backlog: () => number;

  // Options, resolved.
  readonly #mss: number;
  readonly #receiveWindow: number;
  readonly #sendBuffer: number;
  readonly #maxCwnd: number;
  readonly #initialWindow: number;
  readonly #ackDelayMs: number;
  readonly #timeWaitMs: number;
  readonly #minRto: number;
  readonly #maxRto: number;
  readonly #maxRetries: number;
  readonly #maxSynRetries: number;

  // Send sequence space (RFC 9293 §3.3.1), plus sndMax: the highest sequence sent, which
  // stays put when a timeout winds sndNxt back to sndUna.
  readonly #iss: number;
  #sndUna: number;
  #sndNxt: number;
  #sndMax: number;
  #sndWnd = 0;
  #sndWl1 = 0;
  #sndWl2 = 0;
  #sndShift = 0;
  #sendMss = DEFAULT_PEER_MSS;
  /** Sequence just after the last byte written; the FIN, once asked for, takes this number. */
  #sndEnd: number;
  #queue: Uint8Array[] = [];
  /** Bytes in the queue: written and not yet acknowledged. */
  #queued = 0;
  #finQueued = false;
  #writerWaiting = false;

  // Receive sequence space.
  #irs = 0;
  #rcvNxt = 0;
  #rcvShift = 0;
  /** The right edge of the window last advertised: never moved left. */
  #rcvEdge = 0;
  #peerWindowScale: number | undefined;
  #unackedSegments = 0;
  #ackTimer: TimerHandle | undefined;
  /** Segments past a gap, by sequence, waiting for the gap to fill. */
  #outOfOrder: { seq: number; payload: Uint8Array; fin: boolean }[] = [];
  #outOfOrderBytes = 0;

  // Congestion control.
  #cwnd: number;
  #ssthresh = Number.MAX_SAFE_INTEGER;
  #dupAcks = 0;
  #inRecovery = false;
  #recover = 0;

  // Round-trip time and the retransmission timer (one timer, re-armed lazily by deadline).
  #srtt = 0;
  #rttvar = 0;
  #rto: number = DEFAULTS.initialRtoMs;
  #timing = false;
  #rttSeq = 0;
  #rttAt = 0;
  #retries = 0;
  #rtxDeadline = 0;
  #rtxTimer: TimerHandle | undefined;
  #rtxTimerAt = 0;
  #lingerTimer: TimerHandle | undefined;
  #closeReported = false;

  constructor(options: TcpConnectionOptions) {
    this.#timers = options.timers;
    this.#output = options.output;
    this.#events = options.events ?? {};
    this.#backlog = options.backlog ?? (() => 0);
    this.#mss = options.mss ?? DEFAULTS.mss;
    this.#receiveWindow = Math.max(this.#mss, options.receiveWindow ?? DEFAULTS.receiveWindow);
    this.#sendBuffer = options.sendBuffer ?? DEFAULTS.sendBuffer;
    this.#initialWindow = options.initialWindow ?? DEFAULTS.initialWindow;
    this.#maxCwnd = options.maxWindow ?? DEFAULTS.maxWindow;
    this.#ackDelayMs = options.ackDelayMs ?? DEFAULTS.ackDelayMs;
    this.#timeWaitMs = options.timeWaitMs ?? DEFAULTS.timeWaitMs;
    this.#minRto = options.minRtoMs ?? DEFAULTS.minRtoMs;
    this.#maxRto = options.maxRtoMs ?? DEFAULTS.maxRtoMs;
    this.#maxRetries = options.maxRetries ?? DEFAULTS.maxRetries;
    this.#maxSynRetries = options.maxSynRetries ?? DEFAULTS.maxSynRetries;
    this.#iss = (options.iss ?? Math.floor(Math.random() * 0x100000000)) >>> 0;
    this.#sndUna = this.#iss;
    this.#sndNxt = this.#iss;
    this.#sndMax = this.#iss;
    this.#sndEnd = seqAdd(this.#iss, 1);
    let shift = 0;
    while (this.#receiveWindow >> shift > 0xffff) shift++;
    this.#rcvShift = shift;
    this.#cwnd = this.#initialWindow * DEFAULT_PEER_MSS;
  }

  get state(): TcpState {
    return this.#state;
  }

  /** Bytes written and not yet acknowledged by the peer. */
  get buffered(): number {
    return this.#queued;
  }

  /** The segment size in use towards the peer. */
  get sendMss(): number {
    return this.#sendMss;
  }

  set events(events: TcpEvents) {
    this.#events = events;
  }

  // ---- opening ----------------------------------------------------------------------------

  /** Active open: send our SYN. */
  connect(): void {
    if (this.#state !== "closed" || this.#closeReported) return;
    this.#state = "syn-sent";
    this.#sendSyn();
  }

  /**
   * Passive open from the peer's SYN. The connection waits in LISTEN, sending nothing, until
   * accept(): the gateway answers only once the host side is connected, so a refused host
   * connection becomes an RST and not an accept-then-reset.
   */
  listen(syn: TcpSegment): void {
    if (this.#state !== "closed" || this.#closeReported) return;
    this.#state = "listen";
    this.#irs = syn.seq;
    this.#rcvNxt = seqAdd(syn.seq, 1);
    this.#takePeerOptions(syn);
    this.#sndWnd = syn.window;
    this.#sndWl1 = syn.seq;
  }

  /** Answers the SYN given to listen() with our SYN-ACK. */
  accept(): void {
    if (this.#state !== "listen") return;
    this.#state = "syn-received";
    this.#sendSyn();
  }

  #takePeerOptions(syn: TcpSegment): void {
    const peerMss = syn.options.mss ?? DEFAULT_PEER_MSS;
    this.#sendMss = Math.max(MIN_MSS, Math.min(peerMss, this.#mss));
    this.#peerWindowScale = syn.options.windowScale;
    if (this.#peerWindowScale === undefined) {
      this.#rcvShift = 0;
      this.#sndShift = 0;
    } else {
      this.#sndShift = this.#peerWindowScale;
    }
    this.#cwnd = Math.min(this.#initialWindow, this.#maxCwnd) * this.#sendMss;
  }

  #sendSyn(): void {
    const synAck = this.#state === "syn-received";
    // RFC 7323 §2.2: offer scaling in a SYN; in a SYN-ACK only if the peer offered it.
    const scale = synAck ? (this.#peerWindowScale === undefined ? undefined : this.#rcvShift) : this.#rcvShift;
    this.#sndNxt = seqAdd(this.#iss, 1);
    this.#sndMax = this.#sndNxt;
    const window = Math.min(0xffff, this.#receiveWindow);
    this.#rcvEdge = seqAdd(this.#rcvNxt, window);
    this.#emit({
      seq: this.#iss,
      ack: synAck ? this.#rcvNxt : 0,
      flags: synAck ? TCP_FLAG.syn | TCP_FLAG.ack : TCP_FLAG.syn,
      window,
      mss: this.#mss,
      ...(scale === undefined ? {} : { windowScale: scale }),
    });
    this.#armRtx(this.#rto);
  }

  // ---- the application side ---------------------------------------------------------------

  /** Queues bytes for the peer; false asks the writer to wait for drain. */
  write(bytes: Uint8Array): boolean {
    if (this.#finQueued || this.#state === "closed" || this.#state === "time-wait" || bytes.length === 0) {
      return !this.#finQueued && this.#state !== "closed";
    }
    this.#queue.push(bytes);
    this.#queued += bytes.length;
    this.#sndEnd = seqAdd(this.#sndEnd, bytes.length);
    this.#pump();
    if (this.#queued >= this.#sendBuffer) {
      this.#writerWaiting = true;
      return false;
    }
    return true;
  }

  /** No more bytes: a FIN follows what is queued. */
  end(): void {
    if (this.#finQueued || this.#state === "closed") return;
    this.#finQueued = true;
    if (this.#state === "listen") {
      this.#release("aborted");
      return;
    }
    this.#pump();
  }

  /** Drops the connection with an RST. */
  abort(): void {
    if (this.#state === "closed") return;
    if (this.#state !== "listen" && this.#state !== "syn-sent" && this.#state !== "time-wait") {
      this.#emit({ seq: this.#sndNxt, ack: this.#rcvNxt, flags: TCP_FLAG.rst | TCP_FLAG.ack, window: 0 });
    }
    this.#release("aborted");
  }

  /** The consumer took bytes (the backlog fell): tell the peer if the window opened enough. */
  windowOpened(): void {
    if (!this.#synchronized()) return;
    const offered = seqDiff(this.#rcvEdge, this.#rcvNxt);
    const free = this.#freeWindow();
    if (free - offered >= Math.min(this.#receiveWindow / 2, 2 * this.#mss)) this.#sendAck();
  }

  // ---- segments from the peer -------------------------------------------------------------

  receive(seg: TcpSegment): void {
    switch (this.#state) {
      case "closed":
        return;
      case "listen":
        if (seg.flags & TCP_FLAG.rst) this.#release("reset");
        return;
      case "syn-sent":
        this.#receiveInSynSent(seg);
        return;
      default:
        this.#receiveSynchronized(seg);
    }
  }

  #receiveInSynSent(seg: TcpSegment): void {
    const ackOk = (seg.flags & TCP_FLAG.ack) !== 0 && seg.ack === seqAdd(this.#iss, 1);
    if (seg.flags & TCP_FLAG.ack && !ackOk) {
      if (!(seg.flags & TCP_FLAG.rst)) this.#emit({ seq: seg.ack, ack: 0, flags: TCP_FLAG.rst, window: 0 });
      return;
    }
    if (seg.flags & TCP_FLAG.rst) {
      if (ackOk) this.#release("refused");
      return;
    }
    if (!(seg.flags & TCP_FLAG.syn)) return;
    this.#irs = seg.seq;
    this.#rcvNxt = seqAdd(seg.seq, 1);
    this.#rcvEdge = this.#rcvNxt;
    this.#takePeerOptions(seg);
    if (!ackOk) {
      // Simultaneous open (RFC 9293 §3.5): answer with SYN-ACK.
      this.#state = "syn-received";
      this.#sendSyn();
      return;
    }
    this.#sndUna = seg.ack;
    this.#updateWindow(seg, false);
    this.#clearRtx();
    this.#retries = 0;
    this.#establish();
    this.#sendAck();
    this.#pump();
  }

  #establish(): void {
    this.#state = "established";
    this.#events.connected?.();
  }

  /** Read through a method: event callbacks may close the connection under a narrowed type. */
  #isClosed(): boolean {
    return this.#state === "closed";
  }

  #synchronized(): boolean {
    return this.#state !== "closed" && this.#state !== "listen" && this.#state !== "syn-sent";
  }

  #receiveSynchronized(seg: TcpSegment): void {
    const flags = seg.flags;
    const length = seg.payload.length + (flags & TCP_FLAG.syn ? 1 : 0) + (flags & TCP_FLAG.fin ? 1 : 0);
    const window = seqDiff(this.#rcvEdge, this.#rcvNxt);

    // The peer repeating its SYN while ours is unacknowledged: our SYN-ACK was lost.
    if (this.#state === "syn-received" && flags & TCP_FLAG.syn && !(flags & TCP_FLAG.ack) && seg.seq === this.#irs) {
      this.#sendSyn();
      return;
    }

    // RFC 9293 §3.10.7.4, first: is the segment acceptable?
    const inWindow = (s: number): boolean => seqGe(s, this.#rcvNxt) && seqLt(s, seqAdd(this.#rcvNxt, Math.max(window, 1)));
    const acceptable =
      length === 0
        ? window === 0
          ? seg.seq === this.#rcvNxt
          : inWindow(seg.seq)
        : window > 0 && (inWindow(seg.seq) || inWindow(seqAdd(seg.seq, length - 1)));
    if (!acceptable) {
      if (!(flags & TCP_FLAG.rst)) this.#sendAck();
      return;
    }

    // Second: RST. Only an exact match resets; an in-window guess gets a challenge ACK (RFC 5961 §3.2).
    if (flags & TCP_FLAG.rst) {
      if (seg.seq === this.#rcvNxt) this.#release(this.#state === "syn-received" ? "refused" : "reset");
      else this.#sendAck();
      return;
    }

    // Fourth: a SYN in a synchronized state gets a challenge ACK (RFC 5961 §4.2).
    if (flags & TCP_FLAG.syn) {
      this.#sendAck();
      return;
    }

    // Fifth: the ACK field.
    if (!(flags & TCP_FLAG.ack)) return;
    if (this.#state === "syn-received") {
      if (seqGt(seg.ack, this.#sndUna) && seqLe(seg.ack, this.#sndMax)) {
        this.#sndUna = seqAdd(this.#iss, 1);
        this.#updateWindow(seg, true);
        this.#clearRtx();
        this.#retries = 0;
        this.#establish();
        if (this.#isClosed()) return;
      } else {
        this.#emit({ seq: seg.ack, ack: 0, flags: TCP_FLAG.rst, window: 0 });
        return;
      }
    }
    if (seqGt(seg.ack, this.#sndMax)) {
      // Acknowledges something never sent.
      this.#sendAck();
      return;
    }
    const outOfOrder = seqGt(seg.seq, this.#rcvNxt);
    this.#processAck(seg);
    if (this.#state === "closed") return;

    // Seventh: the data. Bytes past a gap wait in the out-of-order queue (RFC 9293 §3.10.7.4
    // "SHOULD"), and the gap is answered at once with a duplicate ACK for fast retransmit.
    const fin = (flags & TCP_FLAG.fin) !== 0;
    if (outOfOrder) {
      if (this.#receiving() && (seg.payload.length > 0 || fin)) this.#queueOutOfOrder(seg.seq, seg.payload, fin);
      this.#sendAck();
      this.#pump();
      return;
    }
    if (this.#receiving()) {
      const before = this.#rcvNxt;
      const filledGap = this.#outOfOrder.length > 0;
      const finTaken = this.#take(seg.seq, seg.payload, fin);
      if (this.#isClosed()) return;
      const queuedFin = this.#takeQueued();
      if (this.#isClosed()) return;
      // One cumulative ACK: at once for a FIN or a filled gap (RFC 5681 §4.2), else delayed.
      if (finTaken || queuedFin) this.#peerFinished();
      else if (filledGap && this.#rcvNxt !== before) this.#sendAck();
      else if (this.#rcvNxt !== before) this.#ackLater();
    } else if (fin && this.#state === "time-wait") {
      // A repeated FIN: our ACK was lost. Acknowledge again and restart the wait.
      this.#sendAck();
      this.#enterTimeWait();
    }
    this.#pump();
  }

  /**
   * Takes the part of a segment at or after rcvNxt and inside the window; true when its FIN
   * was reached as well (everything before it has arrived).
   */
  #take(seq: number, payload: Uint8Array, fin: boolean): boolean {
    const skip = seqDiff(this.#rcvNxt, seq);
    if (skip < 0) return false;
    let bytes = skip < payload.length ? payload.subarray(skip) : payload.subarray(payload.length);
    const room = Math.max(0, seqDiff(this.#rcvEdge, this.#rcvNxt));
    let finReached = fin && skip <= payload.length;
    if (bytes.length > room) {
      bytes = bytes.subarray(0, room);
      finReached = false;
    }
    if (bytes.length > 0) {
      this.#rcvNxt = seqAdd(this.#rcvNxt, bytes.length);
      this.#events.data?.(bytes);
      if (this.#isClosed()) return false;
    }
    return finReached;
  }

  /** Delivers queued segments that the latest bytes made contiguous; true if one held the FIN. */
  #takeQueued(): boolean {
    while (this.#outOfOrder.length > 0 && seqLe(this.#outOfOrder[0]!.seq, this.#rcvNxt)) {
      const next = this.#outOfOrder.shift()!;
      this.#outOfOrderBytes -= next.payload.length;
      if (this.#take(next.seq, next.payload, next.fin)) {
        this.#outOfOrder = [];
        this.#outOfOrderBytes = 0;
        return true;
      }
      if (this.#isClosed()) return false;
    }
    return false;
  }

  #queueOutOfOrder(seq: number, payload: Uint8Array, fin: boolean): void {
    // Only what fits the window we offered; the queue can never hold more than that.
    const room = seqDiff(this.#rcvEdge, seq);
    if (room <= 0) return;
    const bytes = payload.length > room ? payload.subarray(0, room) : payload;
    const keepFin = fin && bytes.length === payload.length;
    let i = 0;
    while (i < this.#outOfOrder.length && seqLt(this.#outOfOrder[i]!.seq, seq)) i++;
    const same = this.#outOfOrder[i];
    if (same && same.seq === seq) {
      if (same.payload.length >= bytes.length && (same.fin || !keepFin)) return;
      this.#outOfOrderBytes -= same.payload.length;
      this.#outOfOrder.splice(i, 1);
    }
    if (this.#outOfOrderBytes + bytes.length > this.#receiveWindow || this.#outOfOrder.length >= MAX_OUT_OF_ORDER) return;
    this.#outOfOrder.splice(i, 0, { seq, payload: bytes, fin: keepFin });
    this.#outOfOrderBytes += bytes.length;
  }

  /** Eighth: the peer's FIN, once everything before it has arrived. */
  #peerFinished(): void {
    this.#rcvNxt = seqAdd(this.#rcvNxt, 1);
    const finAcked = this.#finAcked();
    if (this.#state === "established" || this.#state === "syn-received") this.#state = "close-wait";
    else if (this.#state === "fin-wait-1") this.#state = finAcked ? "time-wait" : "closing";
    else if (this.#state === "fin-wait-2") this.#state = "time-wait";
    this.#sendAck();
    this.#events.end?.();
    if (this.#state === "time-wait") this.#enterTimeWait();
  }

  /** States in which the peer may still send data or FIN. */
  #receiving(): boolean {
    return this.#state === "established" || this.#state === "fin-wait-1" || this.#state === "fin-wait-2" || this.#state === "syn-received";
  }

  #finSent(): boolean {
    return this.#finQueued && seqGt(this.#sndMax, this.#sndEnd);
  }

  #finAcked(): boolean {
    return this.#finSent() && seqGt(this.#sndUna, this.#sndEnd);
  }

  #processAck(seg: TcpSegment): void {
    const ack = seg.ack;
    if (seqGt(ack, this.#sndUna)) {
      const advanced = seqDiff(ack, this.#sndUna);
      // Data bytes newly acknowledged (the FIN takes a number but is no data).
      const queueStart = seqAdd(this.#sndEnd, -this.#queued);
      const dataAcked = Math.max(0, seqDiff(seqLe(ack, this.#sndEnd) ? ack : this.#sndEnd, queueStart));
      this.#dropAcked(dataAcked);
      this.#sndUna = ack;
      if (seqLt(this.#sndNxt, ack)) this.#sndNxt = ack;
      this.#retries = 0;
      this.#takeRttSample(ack);
      this.#growCwnd(ack, advanced);
      this.#dupAcks = 0;
      this.#updateWindow(seg, true);
      if (seqDiff(this.#sndMax, this.#sndUna) > 0) this.#armRtx(this.#rto, true);
      else this.#clearRtx();
      if (this.#writerWaiting && this.#queued <= this.#sendBuffer / 2) {
        this.#writerWaiting = false;
        this.#events.drain?.();
        if (this.#state === "closed") return;
      }
      if (this.#finAcked()) {
        if (this.#state === "fin-wait-1") this.#state = "fin-wait-2";
        else if (this.#state === "closing") {
          this.#state = "time-wait";
          this.#enterTimeWait();
        } else if (this.#state === "last-ack") {
          this.#release("closed");
          return;
        }
      }
    } else if (ack === this.#sndUna) {
      const windowBefore = this.#sndWnd;
      this.#updateWindow(seg, true);
      const flight = seqDiff(this.#sndMax, this.#sndUna);
      // The peer answers: a zero-window probe is not a failed retransmission.
      if (flight === 0) this.#retries = 0;
      const duplicate =
        seg.payload.length === 0 && !(seg.flags & (TCP_FLAG.syn | TCP_FLAG.fin)) && this.#sndWnd === windowBefore && flight > 0;
      if (duplicate) this.#onDuplicateAck(flight);
    }
  }

  #dropAcked(bytes: number): void {
    let left = bytes;
    this.#queued -= bytes;
    while (left > 0) {
      const head = this.#queue[0]!;
      if (head.length <= left) {
        left -= head.length;
        this.#queue.shift();
      } else {
        this.#queue[0] = head.subarray(left);
        left = 0;
      }
    }
  }

  #updateWindow(seg: TcpSegment, scaled: boolean): void {
    // RFC 9293 §3.10.7.4: only a newer segment may change the window.
    if (seqLt(this.#sndWl1, seg.seq) || (this.#sndWl1 === seg.seq && seqLe(this.#sndWl2, seg.ack)) || !scaled) {
      this.#sndWnd = scaled ? seg.window << this.#sndShift : seg.window;
      this.#sndWl1 = seg.seq;
      this.#sndWl2 = seg.ack;
    }
  }

  #takeRttSample(ack: number): void {
    if (!this.#timing || seqLt(ack, this.#rttSeq)) return;
    this.#timing = false;
    const sample = Math.max(0, this.#timers.now() - this.#rttAt);
    // RFC 6298 §2.
    if (this.#srtt === 0) {
      this.#srtt = sample || 1;
      this.#rttvar = sample / 2;
    } else {
      this.#rttvar = 0.75 * this.#rttvar + 0.25 * Math.abs(this.#srtt - sample);
      this.#srtt = 0.875 * this.#srtt + 0.125 * sample;
    }
    this.#rto = Math.min(this.#maxRto, Math.max(this.#minRto, this.#srtt + Math.max(1, 4 * this.#rttvar)));
  }

  #growCwnd(ack: number, advanced: number): void {
    const mss = this.#sendMss;
    if (this.#inRecovery) {
      if (seqGe(ack, this.#recover)) {
        // Full acknowledgment (RFC 6582 §3.2 step 3).
        this.#inRecovery = false;
        this.#cwnd = Math.min(this.#ssthresh, Math.max(seqDiff(this.#sndMax, ack), mss) + mss);
      } else {
        // Partial acknowledgment: the next hole is lost too.
        this.#retransmitAt(ack);
        this.#cwnd = Math.max(mss, this.#cwnd - advanced + mss);
        this.#armRtx(this.#rto, true);
      }
      return;
    }
    if (this.#cwnd < this.#ssthresh) this.#cwnd += Math.min(advanced, mss);
    else this.#cwnd += Math.max(1, Math.floor((mss * mss) / this.#cwnd));
    this.#cwnd = Math.min(this.#cwnd, this.#maxCwnd * mss);
  }

  #onDuplicateAck(flight: number): void {
    const mss = this.#sendMss;
    this.#dupAcks++;
    if (this.#inRecovery) {
      this.#cwnd += mss;
      return;
    }
    if (this.#dupAcks === 3) {
      this.#ssthresh = Math.max(Math.floor(flight / 2), 2 * mss);
      this.#recover = this.#sndMax;
      this.#inRecovery = true;
      this.#retransmitAt(this.#sndUna);
      this.#cwnd = this.#ssthresh + 3 * mss;
    }
  }

  // ---- sending ----------------------------------------------------------------------------

  #freeWindow(): number {
    const limit = 0xffff << this.#rcvShift;
    return Math.max(0, Math.min(limit, this.#receiveWindow - this.#backlog()));
  }

  /** The window field for an outgoing segment; records the right edge it promises. */
  #windowField(): number {
    const free = this.#freeWindow();
    const promised = Math.max(0, seqDiff(this.#rcvEdge, this.#rcvNxt));
    let field = free >> this.#rcvShift;
    if (free < promised) field = Math.ceil(promised / (1 << this.#rcvShift));
    field = Math.min(field, 0xffff);
    const edge = seqAdd(this.#rcvNxt, field << this.#rcvShift);
    if (seqGt(edge, this.#rcvEdge)) this.#rcvEdge = edge;
    return field;
  }

  #emit(segment: TcpSegmentOut): void {
    if (segment.flags & TCP_FLAG.ack) this.#ackSent();
    this.#output(segment);
  }

  #sendAck(): void {
    if (this.#state === "closed") return;
    this.#emit({ seq: this.#sndNxt, ack: this.#rcvNxt, flags: TCP_FLAG.ack, window: this.#windowField() });
  }

  #ackSent(): void {
    this.#unackedSegments = 0;
    if (this.#ackTimer) {
      this.#ackTimer.cancel();
      this.#ackTimer = undefined;
    }
  }

  /** Delayed ACK (RFC 1122 §4.2.3.2): at least every second segment, or after a short wait. */
  #ackLater(): void {
    if (++this.#unackedSegments >= 2) {
      this.#sendAck();
      return;
    }
    this.#ackTimer ??= this.#timers.set(() => {
      this.#ackTimer = undefined;
      if (this.#unackedSegments > 0) this.#sendAck();
    }, this.#ackDelayMs);
  }

  /** States in which queued data (and then the FIN) may go out. */
  #sending(): boolean {
    const s = this.#state;
    return s === "established" || s === "close-wait" || s === "fin-wait-1" || s === "closing" || s === "last-ack";
  }

  /** Copies or views `length` queued bytes starting at sequence `seq`. */
  #slice(seq: number, length: number): Uint8Array {
    let offset = seqDiff(seq, seqAdd(this.#sndEnd, -this.#queued));
    let i = 0;
    while (offset >= this.#queue[i]!.length) offset -= this.#queue[i++]!.length;
    const first = this.#queue[i]!;
    if (offset + length <= first.length) return first.subarray(offset, offset + length);
    const out = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      const chunk = this.#queue[i++]!;
      const part = chunk.subarray(offset, offset + (length - filled));
      out.set(part, filled);
      filled += part.length;
      offset = 0;
    }
    return out;
  }

  /** Sends up to one MSS from `seq` (data, then FIN if it ends there); no window check. */
  #sendFrom(seq: number, limit: number): number {
    const dataLeft = Math.max(0, seqDiff(this.#sndEnd, seq));
    const length = Math.min(dataLeft, limit);
    const fin = this.#finQueued && length === dataLeft;
    if (length === 0 && !fin) return 0;
    let flags = TCP_FLAG.ack;
    if (fin) flags |= TCP_FLAG.fin;
    if (length > 0 && length === dataLeft) flags |= TCP_FLAG.psh;
    const segment: TcpSegmentOut = { seq, ack: this.#rcvNxt, flags, window: this.#windowField() };
    if (length > 0) segment.payload = this.#slice(seq, length);
    this.#emit(segment);
    return length + (fin ? 1 : 0);
  }

  #retransmitAt(seq: number): void {
    this.#timing = false;
    this.#sendFrom(seq, this.#sendMss);
  }

  #pump(): void {
    if (!this.#sending()) return;
    const mss = this.#sendMss;
    for (;;) {
      const flight = seqDiff(this.#sndNxt, this.#sndUna);
      const usable = Math.min(this.#sndWnd, this.#cwnd) - flight;
      const unsent = seqDiff(this.#sndEnd, this.#sndNxt);
      if (unsent > 0) {
        const length = Math.min(unsent, mss, usable);
        if (length <= 0) {
          if (this.#sndWnd === 0 && seqDiff(this.#sndMax, this.#sndUna) === 0) this.#armRtx(this.#rto);
          return;
        }
        // Sender-side silly window avoidance (RFC 1122 §4.2.3.4).
        if (length < mss && length < unsent && flight > 0) return;
        const seq = this.#sndNxt;
        const fresh = seqGe(seq, this.#sndMax);
        const sent = this.#sendFrom(seq, length);
        this.#sndNxt = seqAdd(seq, sent);
        if (seqGt(this.#sndNxt, this.#sndMax)) this.#sndMax = this.#sndNxt;
        if (fresh && !this.#timing) {
          this.#timing = true;
          this.#rttSeq = this.#sndNxt;
          this.#rttAt = this.#timers.now();
        }
        if (sent > length) this.#finWentOut();
        this.#armRtx(this.#rto);
      } else if (unsent === 0 && this.#finQueued) {
        this.#sendFrom(this.#sndNxt, 0);
        this.#sndNxt = seqAdd(this.#sndNxt, 1);
        if (seqGt(this.#sndNxt, this.#sndMax)) this.#sndMax = this.#sndNxt;
        this.#finWentOut();
        this.#armRtx(this.#rto);
        return;
      } else {
        return;
      }
    }
  }

  #finWentOut(): void {
    if (this.#state === "established") this.#state = "fin-wait-1";
    else if (this.#state === "close-wait") this.#state = "last-ack";
  }

  // ---- timers -----------------------------------------------------------------------------

  /** Arms the retransmission (or persist) timer; `restart` moves an armed one later. */
  #armRtx(ms: number, restart = false): void {
    if (this.#rtxDeadline !== 0 && !restart) return;
    const now = this.#timers.now();
    this.#rtxDeadline = now + ms;
    if (this.#rtxTimer && this.#rtxTimerAt <= this.#rtxDeadline) return;
    this.#rtxTimer?.cancel();
    this.#rtxTimerAt = this.#rtxDeadline;
    this.#rtxTimer = this.#timers.set(() => this.#onRtxTimer(), ms);
  }

  #clearRtx(): void {
    this.#rtxDeadline = 0;
  }

  #onRtxTimer(): void {
    this.#rtxTimer = undefined;
    if (this.#rtxDeadline === 0 || this.#state === "closed") return;
    const now = this.#timers.now();
    if (now < this.#rtxDeadline) {
      this.#rtxTimerAt = this.#rtxDeadline;
      this.#rtxTimer = this.#timers.set(() => this.#onRtxTimer(), this.#rtxDeadline - now);
      return;
    }
    this.#rtxDeadline = 0;
    this.#onTimeout();
  }

  #onTimeout(): void {
    const flight = seqDiff(this.#sndMax, this.#sndUna);
    const synState = this.#state === "syn-sent" || this.#state === "syn-received";
    if (flight === 0 && !synState) {
      // Zero-window probe: a segment just below the window, which the peer must acknowledge
      // with its current window (RFC 9293 §3.8.6.1).
      if (this.#sndWnd === 0 && seqDiff(this.#sndEnd, this.#sndNxt) > 0 && this.#sending()) {
        if (++this.#retries > this.#maxRetries) return this.#giveUp();
        this.#emit({ seq: seqAdd(this.#sndUna, -1), ack: this.#rcvNxt, flags: TCP_FLAG.ack, window: this.#windowField() });
        this.#rto = Math.min(this.#rto * 2, this.#maxRto);
        this.#armRtx(this.#rto);
      }
      return;
    }
    if (++this.#retries > (synState ? this.#maxSynRetries : this.#maxRetries)) return this.#giveUp();
    this.#rto = Math.min(this.#rto * 2, this.#maxRto);
    this.#timing = false;
    if (synState) {
      this.#sendSyn();
      return;
    }
    // RFC 5681 §3.1: the window collapses to one segment and sending restarts at sndUna.
    const mss = this.#sendMss;
    this.#ssthresh = Math.max(Math.floor(flight / 2), 2 * mss);
    this.#cwnd = mss;
    this.#inRecovery = false;
    this.#dupAcks = 0;
    this.#sndNxt = this.#sndUna;
    const sent = this.#sendFrom(this.#sndUna, mss);
    this.#sndNxt = seqAdd(this.#sndUna, sent);
    this.#armRtx(this.#rto);
  }

  #giveUp(): void {
    if (this.#synchronized()) {
      this.#emit({ seq: this.#sndNxt, ack: this.#rcvNxt, flags: TCP_FLAG.rst | TCP_FLAG.ack, window: 0 });
    }
    this.#release("timeout");
  }

  #enterTimeWait(): void {
    this.#clearRtx();
    this.#lingerTimer?.cancel();
    this.#lingerTimer = this.#timers.set(() => this.#release("closed"), this.#timeWaitMs);
  }

  #release(reason: TcpCloseReason): void {
    this.#state = "closed";
    this.#rtxDeadline = 0;
    this.#rtxTimer?.cancel();
    this.#rtxTimer = undefined;
    this.#ackTimer?.cancel();
    this.#ackTimer = undefined;
    this.#lingerTimer?.cancel();
    this.#lingerTimer = undefined;
    this.#queue = [];
    this.#queued = 0;
    this.#outOfOrder = [];
    this.#outOfOrderBytes = 0;
    if (this.#closeReported) return;
    this.#closeReported = true;
    this.#events.close?.(reason);
  }
}
