/**
 * The configuration a machine runs, kept in its journal so that a config the
 * cloud pushed survives a restart. One reference is swapped on apply, so a
 * reader sees the old config or the new one, never half of each.
 */
import { type Journal, migrate } from "../journal/journal.ts";
import { MachineConfig } from "../protocol/config.ts";

const steps = [
  `CREATE TABLE machine_config (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version TEXT NOT NULL,
    config_json TEXT NOT NULL,
    applied_at INTEGER NOT NULL
  )`,
];

/** The machine's current configuration. */
export class ConfigStore {
  private config: MachineConfig;

  /** Loads the journaled config, or `fallback` when none was ever applied. */
  constructor(private readonly journal: Journal, private readonly fallback: MachineConfig) {
    migrate(journal, "config", steps);
    this.config = this.load() ?? fallback;
  }

  /** The configuration in force. */
  current(): MachineConfig {
    return this.config;
  }

  /** Journals `config` and makes it current; false when that version already runs. */
  apply(config: MachineConfig, now: number): boolean {
    if (config.version === this.config.version) return false;
    this.journal.prepare(
      `INSERT INTO machine_config (id, version, config_json, applied_at) VALUES (1, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET version = excluded.version,
         config_json = excluded.config_json, applied_at = excluded.applied_at`,
    ).run(config.version, JSON.stringify(config), now);
    this.config = config;
    return true;
  }

  /** Re-reads the journal (another process of this machine applied a config). */
  reload(): void {
    this.config = this.load() ?? this.fallback;
  }

  private load(): MachineConfig | null {
    const row = this.journal.prepare("SELECT config_json FROM machine_config WHERE id = 1").get();
    return row ? MachineConfig.parse(JSON.parse(String(row.config_json))) : null;
  }
}
