// Package dockertest runs the compose fleet of docker-compose.yml on a real
// Docker engine: it builds the scratch images (scripts/images.sh), brings the hub
// and both sites up, rolls the fleet out from the host against the hub's
// published NATS port, checks that every node converged, and injects faults (a
// site's leaf cut off from the hub, the hub's NATS restarted, an agent killed in
// the middle of an apply). The tests skip when no engine answers `docker info`
// and remove everything they started. It holds tests only.
package dockertest
