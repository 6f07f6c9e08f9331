// Package fault holds pbxfleet's fault tests (issue 6, point 4): real NATS
// servers, real pbxfleet, pbx-node and nats-server processes, real lab hosts and
// agents, and faults injected into them — an agent SIGKILLed between writing its
// files and reloading, the control plane SIGKILLed and restarted mid-rollout, the
// orchestrator alone killed and replaced, one server of a 3-server JetStream
// cluster shut down, a site's leaf node cut off during its wave, and a thousand
// malformed or hostile desired states. Every test runs on loopback, bounds its
// waits with contexts, kills only the processes it started (by PID), and logs
// what it injected ("injected:") and what it checked ("checked:"). It holds
// tests only; see README.md for how to run them and the last counts.
package fault
