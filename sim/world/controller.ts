/**
 * The controller computer of the simulated machine: boots the real, unchanged
 * actors (`assembleMachine`) on an incarnation of its own, loses power, and
 * boots again on the same journal and the same hardware.
 */
import type { Bus } from "../../bus/bus.ts";
import { TypedBus } from "../../bus/typed_bus.ts";
import type { Clock } from "../../clock/clock.ts";
import type { Journal } from "../../journal/journal.ts";
import type { Logger, LogLevel } from "../../log/log.ts";
import type { Random } from "../../random/random.ts";
import type { MachineConfig } from "../../protocol/config.ts";
import type { RestockLine } from "../../protocol/carousel.ts";
import { assembleMachine, type Assembly, type SimHardware } from "../../controller/assemble.ts";
import { Part } from "../../controller/settings.ts";
import type { z } from "zod";
import { type HardwareWatch, Incarnation } from "./incarnation.ts";

/** What the controller computer is built from. */
export interface ControllerOptions {
  machineId: string;
  /** The world's clock. */
  clock: Clock;
  /** Opens a new connection to the machine's NATS server, named `name`. */
  connect(name: string): Bus | Promise<Bus>;
  /** A fresh seeded stream for boot number `index`. */
  randomFor(index: number): Random;
  /** Where the actors' log lines go (level, line). */
  logSink(level: LogLevel, line: string): void;
  config: MachineConfig;
  journal: Journal;
  hardware: SimHardware;
  initialStock: z.infer<typeof RestockLine>[];
  heartbeatMs?: number;
  watch?: HardwareWatch;
}

/** The parts one controller process runs in the simulator: all but the HTTP API. */
export const simParts: readonly Part[] = Part.options.filter((p) => p !== "api");

/** A bootable, killable controller computer. */
export class SimController {
  private life: Incarnation | null = null;
  private assembly: Assembly | null = null;
  private boots = 0;

  /** Builds the computer; nothing runs before {@linkcode boot}. */
  constructor(private readonly o: ControllerOptions) {}

  /** True while a life is running. */
  get running(): boolean {
    return this.life?.isAlive ?? false;
  }

  /** Boots so far. */
  get bootCount(): number {
    return this.boots;
  }

  /** Boots a new life: new clock scope, connection and stream; same journal and hardware. */
  async boot(): Promise<void> {
    if (this.running) throw new Error("Controller is already running");
    const index = ++this.boots;
    const life = new Incarnation(index, this.o.clock);
    this.life = life;
    const random = this.o.randomFor(index);
    const log = makeLogger(life.clock, this.o.logSink, `ctl${index}`, () => life.isAlive);
    const raw = await this.o.connect(`ctl-${index}`);
    const bus = new TypedBus(life.wrapBus(raw), {
      clock: life.clock,
      random,
      log: log.child("bus"),
      machineId: this.o.machineId,
    });
    this.assembly = await assembleMachine({
      bus,
      clock: life.clock,
      random,
      log,
      config: this.o.config,
      journal: this.o.journal,
      parts: simParts,
      hardware: life.wrapHardware(this.o.hardware, this.o.watch),
      initialStock: this.o.initialStock,
      ...(this.o.heartbeatMs ? { heartbeatMs: this.o.heartbeatMs } : {}),
    });
  }

  /** The power goes: the running life dies where it stands. */
  powerLoss(): void {
    this.life?.kill();
    this.assembly = null;
  }

  /** A graceful stop at the end of a run (the actors' own `stop()`). */
  async shutdown(): Promise<void> {
    const assembly = this.assembly;
    this.assembly = null;
    if (assembly && this.life?.isAlive) {
      await assembly.stop().catch(() => {});
    }
    this.life?.kill();
  }
}

/** A logger that writes like `createLogger` but only while its life lasts. */
function makeLogger(
  clock: Clock,
  sink: (level: LogLevel, line: string) => void,
  boot: string,
  alive: () => boolean,
): Logger {
  const make = (component: string | undefined): Logger => ({
    log(level, msg, fields) {
      if (level === "debug" || !alive()) return;
      sink(
        level,
        JSON.stringify({ t: clock.now(), k: "log", boot, level, component, msg, ...fields }),
      );
    },
    child: (name) => make(component ? `${component}.${name}` : name),
  });
  return make(undefined);
}
