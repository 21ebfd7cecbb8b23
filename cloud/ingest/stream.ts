/**
 * The fleet's JetStream resources: the events stream, the dead-letter stream
 * and the durable pull consumer the ingestion workers share. Creating them is
 * idempotent; an existing stream or consumer is left as an operator tuned it.
 */
import {
  AckPolicy,
  DeliverPolicy,
  type JetStreamManager,
  jetstreamManager,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { FleetNames, FleetStreamConfig } from "../../protocol/fleet.ts";

/** The durable consumer name of the ingestion workers. */
export const ingestDurable = "ingest";

/** Options of {@linkcode ensureIngestConsumer}. */
export interface IngestConsumerOptions {
  /** Durable name (default {@linkcode ingestDurable}). */
  durable?: string;
  /** How long a delivered message may stay unacknowledged before redelivery (default 30 s). */
  ackWaitMs?: number;
  /** Unacknowledged messages across all workers (default 20 000). */
  maxAckPending?: number;
}

async function ensureStream(jsm: JetStreamManager, config: FleetStreamConfig): Promise<void> {
  try {
    await jsm.streams.info(config.name);
  } catch {
    await jsm.streams.add(config);
  }
}

/** Creates the events and dead-letter streams of `names` when missing. */
export async function ensureFleetStreams(nc: NatsConnection, names: FleetNames): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await ensureStream(jsm, names.streamConfig());
  await ensureStream(jsm, names.deadLetterStreamConfig());
}

/**
 * Creates the streams and the durable pull consumer of the ingestion workers
 * when missing. Explicit acks (one worker's ack never covers another's
 * messages); unlimited redeliveries, because a message is only ever given up
 * on by moving it to the dead-letter stream.
 */
export async function ensureIngestConsumer(
  nc: NatsConnection,
  names: FleetNames,
  options: IngestConsumerOptions = {},
): Promise<string> {
  await ensureFleetStreams(nc, names);
  const jsm = await jetstreamManager(nc);
  const durable = options.durable ?? ingestDurable;
  try {
    await jsm.consumers.info(names.stream, durable);
  } catch {
    await jsm.consumers.add(names.stream, {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: (options.ackWaitMs ?? 30_000) * 1_000_000,
      max_deliver: -1,
      max_ack_pending: options.maxAckPending ?? 20_000,
      max_waiting: 512,
    });
  }
  return durable;
}

/** Deletes the streams of `names` (tests and benches clean up with this). */
export async function deleteFleetStreams(nc: NatsConnection, names: FleetNames): Promise<void> {
  const jsm = await jetstreamManager(nc);
  for (const name of [names.stream, names.deadLetterStream]) {
    await jsm.streams.delete(name).catch(() => false);
  }
}
