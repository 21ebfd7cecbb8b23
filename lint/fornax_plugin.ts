/**
 * Fornax's own lint rule: only the clock module reads wall time or arms timers,
 * and only the random module draws randomness. Actors, drivers, the protocol
 * and the simulator take a `Clock` and a `Random`, so a simulated run replays
 * byte for byte and a real one can run at any speed.
 */

/** Folders whose code must take time and randomness as inputs. */
const guarded = /\/(actors|hardware|protocol|sim)\//;

const banned: Record<string, string> = {
  "Date.now": "read time from the injected Clock (clock.now())",
  "performance.now": "read time from the injected Clock (clock.now())",
  "Math.random": "draw from the injected Random",
  "crypto.randomUUID": "take ids from the injected Random (random.uuid())",
  "crypto.getRandomValues": "draw from the injected Random",
};

const bannedCalls: Record<string, string> = {
  setTimeout: "schedule through the injected Clock (clock.setTimeout or sleep)",
  setInterval: "schedule through the injected Clock (every(clock, ms, fn))",
};

function applies(filename: string): boolean {
  return guarded.test(filename) && !filename.endsWith("_test.ts");
}

const plugin: Deno.lint.Plugin = {
  name: "fornax",
  rules: {
    "no-ambient-time": {
      create(context) {
        if (!applies(context.filename)) return {};
        return {
          MemberExpression(node) {
            if (node.object.type !== "Identifier" || node.property.type !== "Identifier") return;
            const name = `${node.object.name}.${node.property.name}`;
            const hint = banned[name];
            if (hint) context.report({ node, message: `${name} is not allowed here: ${hint}` });
          },
          NewExpression(node) {
            if (
              node.callee.type === "Identifier" && node.callee.name === "Date" &&
              node.arguments.length === 0
            ) {
              context.report({
                node,
                message: "new Date() reads wall time: use the injected Clock",
              });
            }
          },
          CallExpression(node) {
            if (node.callee.type !== "Identifier") return;
            const hint = bannedCalls[node.callee.name];
            if (hint) {
              context.report({ node, message: `${node.callee.name} is not allowed here: ${hint}` });
            }
          },
        };
      },
    },
  },
};

export default plugin;
