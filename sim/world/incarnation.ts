/**
 * One life of the controller computer, from boot to power loss. Everything the
 * controller touches goes through this incarnation: its clock (a scope over
 * the world's clock), its bus connection, the plant's wires and the device
 * drivers. A power loss kills the incarnation at once: its timers are dropped
 * without firing, its connection closes, the messages in flight to it are
 * lost, and no promise it waits on ever settles again, so not one more line of
 * its code runs and nothing more reaches its journal. The physical world (the
 * `SimHardware`) goes on; the PLC's output watchdog turns the heater off and
 * stops the motors it was driving.
 *
 * Nothing here calls the actors' `stop()`: that would be a graceful shutdown.
 */
import type { Clock, TimerHandle } from "../../clock/clock.ts";
import type { Bus, BusMessage, SubscribeOptions } from "../../bus/bus.ts";
import type { SimHardware } from "../../controller/assemble.ts";
import type { SimPlant } from "../../hardware/sim/plant.ts";
import type { ArmDriver } from "../../hardware/arm.ts";
import type { CarouselDriver } from "../../hardware/carousel.ts";
import type { OvenDriver } from "../../hardware/oven.ts";
import type {
  CallOptions,
  CardReader,
  CashAcceptor,
  PaymentGateway,
} from "../../hardware/payment.ts";
import type { SimPayment } from "../../hardware/sim/payment.ts";

/** Observes what the controller makes the hardware do (for the invariants). */
export interface HardwareWatch {
  /** The controller starts an arm move to `to`. */
  armMove?(to: string): void;
  /** The controller drives the pickup door. */
  door?(open: boolean): void;
  /** The carousel ejected a pizza from `slot` (the ejection finished). */
  ejected?(slot: number): void;
}

/**
 * What a dead life's device calls resolve with: a promise that never settles.
 * A fresh one each time, so the dead code waiting on it can be collected.
 */
const never = (): Promise<never> => new Promise(() => {});

/** A controller life: wrapped clock, bus, plant and drivers that all die together. */
export class Incarnation {
  private alive = true;
  private readonly timers = new Set<TimerHandle>();
  private readonly killers = new Set<() => void>();
  private readonly abort = new AbortController();
  /** The clock the controller's code sees. */
  readonly clock: Clock;

  /** Starts life `index` on `world` (the world's clock). */
  constructor(readonly index: number, private readonly world: Clock) {
    const timers = this.timers;
    this.clock = {
      now: () => world.now(),
      setTimeout: (fn, ms) => {
        if (!this.alive) return null;
        const handle: TimerHandle = world.setTimeout(() => {
          timers.delete(handle);
          fn();
        }, ms);
        timers.add(handle);
        return handle;
      },
      clearTimeout: (handle) => {
        if (handle === null || handle === undefined) return;
        if (timers.delete(handle)) world.clearTimeout(handle);
      },
    };
  }

  /** False once the power went. */
  get isAlive(): boolean {
    return this.alive;
  }

  /** The signal that aborts every device operation in flight at the power loss. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /**
   * A promise that settles like `p` while this life lasts and never after: the
   * code that awaits it died with the power.
   */
  gate<T>(p: Promise<T>): Promise<T> {
    return p.then(this.passValue, this.passError) as Promise<T>;
  }

  // Bound once: every device call of a simulated day passes through them.
  private readonly passValue = (v: unknown): unknown => this.alive ? v : never();
  private readonly passError = (e: unknown): unknown => {
    if (this.alive) throw e;
    return never();
  };

  /** `signal` joined with the power: aborted when either aborts. */
  joined(signal?: AbortSignal): AbortSignal {
    return signal ? AbortSignal.any([signal, this.abort.signal]) : this.abort.signal;
  }

  /** Runs `fn` at the power loss (before the timers are dropped). */
  onKill(fn: () => void): void {
    this.killers.add(fn);
  }

  /** Registers a listener remover that the power loss calls. */
  private tracked(off: () => void): () => void {
    const once = () => {
      this.killers.delete(once);
      off();
    };
    this.killers.add(once);
    return once;
  }

  /** The power goes: drop every timer, run the kill hooks, abort device operations. */
  kill(): void {
    if (!this.alive) return;
    this.alive = false;
    for (const handle of this.timers) this.world.clearTimeout(handle);
    this.timers.clear();
    for (const fn of [...this.killers]) {
      try {
        fn();
      } catch {
        // A dying life has nobody to tell.
      }
    }
    this.killers.clear();
    this.abort.abort(new Error("controller power lost"));
  }

  /**
   * The controller's connection: closes abruptly at the power loss; pending
   * requests never settle and subscriptions never fire again.
   */
  wrapBus(conn: Bus): Bus {
    this.onKill(() => void conn.close());
    return {
      publish: (subject, data) => conn.publish(subject, data),
      subscribe: (pattern, handler: (msg: BusMessage) => void, options?: SubscribeOptions) =>
        this.tracked(conn.subscribe(pattern, (msg) => {
          if (this.alive) handler(msg);
        }, options)),
      request: (subject, data, timeoutMs) => this.gate(conn.request(subject, data, timeoutMs)),
      flush: () => this.gate(conn.flush()),
      close: () => this.gate(conn.close()),
    };
  }

  /** The plant's wires as this life sees them: its listeners die with it. */
  wrapPlant(plant: SimPlant): SimPlant {
    const view = Object.create(plant) as SimPlant;
    view.onChange = (fn) =>
      this.tracked(plant.onChange((signal, value) => {
        if (this.alive) fn(signal, value);
      }));
    view.set = (signal, value) => {
      if (this.alive) plant.set(signal, value);
    };
    view.get = (signal) => plant.get(signal);
    view.snapshot = () => plant.snapshot();
    return view;
  }

  /** The simulated hardware as this life drives it. */
  wrapHardware(hw: SimHardware, watch: HardwareWatch = {}): SimHardware {
    const oven: OvenDriver = {
      readTemperatureC: () => this.gate(hw.oven.driver.readTemperatureC()),
      setHeaterPct: (pct) => this.alive ? this.gate(hw.oven.driver.setHeaterPct(pct)) : never(),
    };
    // The PLC's watchdog: without its controller, the heater output drops.
    this.onKill(() => void hw.oven.driver.setHeaterPct(0).catch(() => {}));

    const c = hw.carousel.driver;
    const carousel: CarouselDriver = {
      rotateTo: (slot, signal) => this.gate(c.rotateTo(slot, this.joined(signal))),
      eject: (signal) =>
        this.gate(
          c.eject(this.joined(signal)).then(() => {
            watch.ejected?.(hw.carousel.model.position());
          }),
        ),
      storageTempC: () => this.gate(c.storageTempC()),
    };

    const a = hw.arm.driver;
    const arm: ArmDriver = {
      travelTimeMs: (from, to) => a.travelTimeMs(from, to),
      doorTravelMs: a.doorTravelMs,
      position: () => a.position(),
      moveTo: (to, signal) => {
        if (!this.alive) return never();
        watch.armMove?.(to);
        return this.gate(a.moveTo(to, this.joined(signal)));
      },
      stop: () => {
        if (this.alive) a.stop();
      },
      setDoor: (open, signal) => {
        if (!this.alive) return never();
        watch.door?.(open);
        return this.gate(a.setDoor(open, this.joined(signal)));
      },
      read: () => a.read(),
      subscribe: (fn) =>
        this.tracked(a.subscribe((s) => {
          if (this.alive) fn(s);
        })),
    };
    // The drive stops when its controller dies (its moves were aborted above too).
    this.onKill(() => a.stop());

    const g = hw.payment.gateway;
    const opts = (o?: CallOptions): CallOptions => ({ signal: this.joined(o?.signal) });
    const gateway: PaymentGateway = {
      authorize: (req, o) => this.gate(g.authorize(req, opts(o))),
      capture: (req, o) => this.gate(g.capture(req, opts(o))),
      void: (req, o) => this.gate(g.void(req, opts(o))),
      refund: (req, o) => this.gate(g.refund(req, opts(o))),
    };
    const reader: CardReader = {
      online: () => hw.payment.reader.online(),
      onChange: (fn) =>
        this.tracked(hw.payment.reader.onChange((online) => {
          if (this.alive) fn(online);
        })),
    };
    const cash: CashAcceptor = {
      acceptedCents: () => hw.payment.cash.acceptedCents(),
      payOut: (req, o) => this.gate(hw.payment.cash.payOut(req, opts(o))),
    };
    const payment: SimPayment = { ...hw.payment, gateway, reader, cash };

    return {
      plant: this.wrapPlant(hw.plant),
      oven: { driver: oven, model: hw.oven.model },
      carousel: { driver: carousel, model: hw.carousel.model },
      arm: { ...hw.arm, driver: arm },
      payment,
      dispose: () => {},
    };
  }
}
