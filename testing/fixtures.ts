/**
 * Test fixtures an actor test builds on: a small machine configuration, the
 * context an actor gets from its host on a test bus, and safety monitor
 * states to publish at an actor.
 */
import type { ActorContext } from "../actors/actor.ts";
import type { Clock } from "../clock/clock.ts";
import type { MachineConfig } from "../protocol/config.ts";
import type { Pizza } from "../protocol/entities.ts";
import type { SafetyStatus } from "../protocol/safety.ts";
import { createCryptoRandom } from "../random/random.ts";
import type { TestBus } from "./nats.ts";

/** A plain margherita, with `overrides` for what a test cares about. */
export function testPizza(overrides: Partial<Pizza> = {}): Pizza {
  return {
    pizzaId: "margherita",
    name: "Margherita",
    description: "",
    size: "MEDIUM",
    toppings: [],
    priceCents: 900,
    calories: 800,
    allergens: [],
    imageUrl: "",
    cookingTimeMs: 90_000,
    cookingTempC: 250,
    ...overrides,
  };
}

/** A machine selling {@linkcode testPizza} from ten slots, with `overrides`. */
export function testConfig(overrides: Partial<MachineConfig> = {}): MachineConfig {
  return {
    version: "test",
    menu: [testPizza()],
    acceptedCents: [100, 500],
    storageSlots: 10,
    pickupBays: 2,
    utcOffsetMin: 0,
    lowStockThreshold: 1,
    ...overrides,
  };
}

/** The context of an actor on `tb`, on the test bus's clock unless given another. */
export function testActorContext(
  tb: TestBus,
  config: MachineConfig,
  clock: Clock = tb.clock,
): ActorContext {
  return { bus: tb.bus, clock, random: createCryptoRandom(), log: tb.log, config };
}

/** A safety monitor's status: armed, or tripped by the e-stop with both outputs cut. */
export function safetyStatus(tripped: boolean): SafetyStatus {
  return {
    tripped,
    causes: tripped ? ["ESTOP"] : [],
    activeInputs: [],
    latchedAt: tripped ? 1 : null,
    heaterPowerCut: tripped,
    armHalted: tripped,
    pickupDoorOpen: false,
  };
}
