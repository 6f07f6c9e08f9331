package web

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
)

// Keys of what changed, for the clients' dirty sets.
const (
	keySite    = "s/"  // s/<site>
	keyRollout = "r/"  // r/<id>
	keyRSite   = "rs/" // rs/<id>/<site>
	keyCurrent = "current"
)

// Run feeds the server from NATS until ctx ends (call it again after an
// error: it starts over): KV watches of the desired,
// status and rollouts buckets and an ordered consumer of the results stream
// (the last result of every node, then each new one). Nothing is polled. It
// returns nil when ctx ends, or an error when a bucket or the stream cannot
// be opened or a watch ends.
func (s *Server) Run(ctx context.Context) error {
	js := s.cfg.JS
	dkv, err := js.KeyValue(ctx, events.BucketDesired)
	if err != nil {
		return fmt.Errorf("web: %w", err)
	}
	skv, err := js.KeyValue(ctx, events.BucketStatus)
	if err != nil {
		return fmt.Errorf("web: %w", err)
	}
	rkv, err := js.KeyValue(ctx, events.BucketRollouts)
	if err != nil {
		return fmt.Errorf("web: %w", err)
	}
	// Run starts from nothing: after a restart (its watch ended) what was
	// deleted meanwhile must not linger; every client gets a fresh snapshot.
	s.mu.Lock()
	s.st = newState()
	if st, err := skv.Status(ctx); err == nil {
		s.st.statusTTL = st.TTL()
	}
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 4)
	synced := make(chan struct{}, 3)
	watch := func(kv jetstream.KeyValue, filters []string, apply func(jetstream.KeyValueEntry) []string) {
		w, err := kv.WatchFiltered(ctx, filters)
		if err != nil {
			errs <- fmt.Errorf("web: watch %s: %w", kv.Bucket(), err)
			return
		}
		defer func() { _ = w.Stop() }()
		for {
			select {
			case <-ctx.Done():
				errs <- nil
				return
			case e, ok := <-w.Updates():
				if !ok {
					errs <- fmt.Errorf("web: the watch of %s ended", kv.Bucket())
					return
				}
				if e == nil {
					synced <- struct{}{}
					continue
				}
				s.mu.Lock()
				keys := apply(e)
				if cur := s.st.pickCurrent(); cur != s.st.current {
					s.st.current = cur
					keys = append(keys, keyCurrent)
				}
				s.mu.Unlock()
				s.touch(keys...)
			}
		}
	}
	go watch(dkv, []string{">"}, s.applyDesired)
	go watch(skv, []string{">"}, s.applyStatus)
	go watch(rkv, []string{orchestrator.StateKeyPrefix + ">"}, s.applyRollout)
	cons, err := js.OrderedConsumer(ctx, events.StreamResults, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.ResultSubjects}, DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return fmt.Errorf("web: results: %w", err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		r, err := events.DecodeResult(msg.Data(), msg.Headers(), msg.Subject())
		if err != nil {
			s.log.Debug("web: unreadable result", "subject", msg.Subject(), "err", err)
			return
		}
		s.mu.Lock()
		ok := s.st.addResult(r)
		s.mu.Unlock()
		if ok {
			site, _, _ := events.ParseNodeID(r.Node)
			s.touch(keySite + site)
		}
	})
	if err != nil {
		return fmt.Errorf("web: results: %w", err)
	}
	defer cc.Stop()
	go func() {
		for range 3 {
			select {
			case <-synced:
			case <-ctx.Done():
				return
			}
		}
		s.resyncAll()
		s.readyOnce.Do(func() { close(s.ready) })
	}()
	// Status entries expire without a delete reaching a watch: age them here,
	// in memory, so a node that stopped reporting turns unhealthy on the page.
	tick := time.NewTicker(expiryCheckEvery)
	defer tick.Stop()
	expired := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errs:
			if err != nil {
				return err
			}
			return nil
		case now := <-tick.C:
			var keys []string
			s.mu.Lock()
			for id, st := range s.st.sites {
				for _, n := range st.nodes {
					if x := s.st.expired(n, now); x != expired[n.id] {
						expired[n.id] = x
						keys = append(keys, keySite+id)
					}
				}
			}
			s.mu.Unlock()
			s.touch(keys...)
		}
	}
}

// resyncAll makes every client start again from a snapshot.
func (s *Server) resyncAll() {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	for c := range s.clients {
		c.mu.Lock()
		c.dirty, c.resync = map[string]struct{}{}, true
		c.mu.Unlock()
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// expiryCheckEvery is how often status entries are aged.
const expiryCheckEvery = 5 * time.Second

func deleted(e jetstream.KeyValueEntry) bool { return e.Operation() != jetstream.KeyValuePut }

func (s *Server) applyDesired(e jetstream.KeyValueEntry) []string {
	n := s.st.node(e.Key())
	if n == nil {
		return nil
	}
	site, _, _ := events.ParseNodeID(e.Key())
	n.desiredRev, n.desiredErr = 0, ""
	if !deleted(e) {
		d, err := events.DecodeDesired(e.Value(), nil, e.Key())
		if err != nil {
			n.desiredErr = err.Error()
		} else {
			n.desiredRev, n.scenario = d.Revision, d.Trunk.Scenario
		}
	}
	s.st.dropEmptySite(site)
	return []string{keySite + site}
}

func (s *Server) applyStatus(e jetstream.KeyValueEntry) []string {
	n := s.st.node(e.Key())
	if n == nil {
		return nil
	}
	site, _, _ := events.ParseNodeID(e.Key())
	n.status, n.statusErr, n.statusStoredAt = nil, "", time.Time{}
	if !deleted(e) {
		st, err := events.DecodeStatus(e.Value(), nil, e.Key())
		if err != nil {
			n.statusErr = err.Error()
		} else {
			n.status, n.statusStoredAt = &st, e.Created()
		}
	}
	s.st.dropEmptySite(site)
	return []string{keySite + site}
}

type idValue struct {
	ID string `json:"id"`
}

func (s *Server) applyRollout(e jetstream.KeyValueEntry) []string {
	key := e.Key()
	switch key {
	case orchestrator.KeyCurrent, orchestrator.KeyLast:
		var v idValue
		if !deleted(e) {
			_ = json.Unmarshal(e.Value(), &v)
		}
		if key == orchestrator.KeyCurrent {
			s.st.active = v.ID
		} else {
			s.st.last = v.ID
		}
		return nil
	}
	rest := strings.TrimPrefix(key, orchestrator.StateKeyPrefix)
	id, site, isSite := strings.Cut(rest, events.RolloutsSiteInfix)
	if strings.Contains(id, ".") {
		return nil
	}
	r := s.st.rollouts[id]
	if isSite {
		if deleted(e) {
			if r != nil {
				delete(r.sites, site)
			}
			return []string{keyRSite + id + "/" + site, keySite + site}
		}
		var ss orchestrator.SiteState
		if err := json.Unmarshal(e.Value(), &ss); err != nil {
			return nil
		}
		if r == nil {
			r = &rolloutState{sites: map[string]orchestrator.SiteState{}}
			s.st.rollouts[id] = r
		}
		r.sites[site] = ss
		return []string{keyRSite + id + "/" + site}
	}
	if deleted(e) {
		delete(s.st.rollouts, id)
		return []string{keyRollout + id}
	}
	var h orchestrator.Rollout
	if err := json.Unmarshal(e.Value(), &h); err != nil {
		return nil
	}
	h.Sites = nil
	if r == nil {
		r = &rolloutState{sites: map[string]orchestrator.SiteState{}}
		s.st.rollouts[id] = r
	}
	r.header = h
	return []string{keyRollout + id}
}
