package ingestapi

import (
	"bytes"
	"container/list"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kgraph-dev/kgraph/events"
)

// answerCache keeps recent answers in the edge, so a repeated question
// costs no round trip to the query service. An answer depends on the
// namespace's graph, vectors and communities; the edge follows the events
// that change them (WatchGraphChanges) and drops a namespace's answers on
// each. Events can be missed (a reconnect), so every answer also expires
// after a short TTL. The cache is off until the watch runs.
type answerCache struct {
	maxEntries int
	ttl        time.Duration

	mu      sync.Mutex
	active  bool
	lru     *list.List               // front: most recently used
	entries map[string]*list.Element // of *cachedAnswer
	epochs  map[string]uint64        // per namespace, bumped by changes
}

type cachedAnswer struct {
	key, namespace string
	epoch          uint64
	storedAt       time.Time
	reply          QueryReply
	// The reply encoded as a cached answer, split where its latency goes.
	beforeLatency, afterLatency []byte
}

// latencySentinel marks where an encoded answer's latency goes; no real
// latency takes eleven days.
const latencySentinel = 987654321.5

// withLatency returns the cached reply ready to send.
func (a *cachedAnswer) withLatency(latencyMS float64) QueryReply {
	r := a.reply
	r.Cached, r.LatencyMS = true, latencyMS
	if a.beforeLatency == nil {
		return r
	}
	b := make([]byte, 0, len(a.beforeLatency)+len(a.afterLatency)+24)
	b = append(b, a.beforeLatency...)
	b = strconv.AppendFloat(b, latencyMS, 'f', -1, 64)
	r.encoded = append(b, a.afterLatency...)
	return r
}

// newCachedAnswer encodes r once for all the hits to come.
func newCachedAnswer(key, ns string, epoch uint64, r QueryReply, now time.Time) *cachedAnswer {
	a := &cachedAnswer{key: key, namespace: ns, epoch: epoch, storedAt: now, reply: r}
	r.Cached, r.LatencyMS, r.encoded = true, latencySentinel, nil
	raw, err := json.Marshal(r)
	if err != nil {
		return a // sent by encoding it on each hit instead
	}
	mark := []byte(`"latency_ms":` + strconv.FormatFloat(latencySentinel, 'f', -1, 64))
	if i := bytes.Index(raw, mark); i >= 0 {
		a.beforeLatency = raw[:i+len(`"latency_ms":`)]
		a.afterLatency = raw[i+len(mark):]
	}
	return a
}

func newAnswerCache(maxEntries int, ttl time.Duration) *answerCache {
	return &answerCache{maxEntries: maxEntries, ttl: ttl, lru: list.New(), entries: map[string]*list.Element{}, epochs: map[string]uint64{}}
}

func (c *answerCache) enabled() bool { return c.maxEntries > 0 && c.ttl > 0 }

// begin returns the namespace's epoch before a query is asked, and whether
// the cache is in use: an answer is stored only if nothing changed in
// between.
func (c *answerCache) begin(ns string) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epochs[ns], c.active
}

func (c *answerCache) get(key, ns string, now time.Time) (*cachedAnswer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.active {
		return nil, false
	}
	el, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	a := el.Value.(*cachedAnswer)
	if a.epoch != c.epochs[ns] || now.Sub(a.storedAt) >= c.ttl {
		c.removeLocked(el)
		return nil, false
	}
	c.lru.MoveToFront(el)
	return a, true
}

func (c *answerCache) put(key, ns string, epoch uint64, r QueryReply, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.active || c.epochs[ns] != epoch {
		return // the graph changed while the question was answered
	}
	if el, ok := c.entries[key]; ok {
		c.removeLocked(el)
	}
	c.entries[key] = c.lru.PushFront(newCachedAnswer(key, ns, epoch, r, now))
	for c.lru.Len() > c.maxEntries {
		c.removeLocked(c.lru.Back())
	}
}

func (c *answerCache) removeLocked(el *list.Element) {
	delete(c.entries, el.Value.(*cachedAnswer).key)
	c.lru.Remove(el)
}

// invalidate drops a namespace's answers.
func (c *answerCache) invalidate(ns string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epochs[ns]++
}

// setActive turns the cache on or off; either way it starts empty.
func (c *answerCache) setActive(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.active = on
	c.lru.Init()
	clear(c.entries)
	for ns := range c.epochs {
		c.epochs[ns]++
	}
}

// answerKey identifies a question with every parameter that shapes its
// answer: the query service's request as sent.
func answerKey(data []byte) string { return string(data) }

// graphChangeTypes are the events after which a namespace's answers may
// differ: the graph, the vectors or the communities changed.
var graphChangeTypes = []events.Type{events.TypeChunkMerged, events.TypeChunkIndexed, events.TypeDocumentUnmerged,
	events.TypeDocumentUnindexed, events.TypeCommunitiesUpdated, events.TypeJobCompleted}

// Subscriber subscribes to core NATS subjects (a *nats.Conn).
type Subscriber interface {
	Subscribe(subject string, cb nats.MsgHandler) (*nats.Subscription, error)
	Flush() error
}

// WatchGraphChanges follows the events that change what answers say and
// keeps the edge's answer cache in step, until ctx ends. The cache serves
// answers only while the watch runs.
func (s *Server) WatchGraphChanges(ctx context.Context, nc Subscriber) error {
	if !s.answers.enabled() {
		<-ctx.Done()
		return nil
	}
	var subs []*nats.Subscription
	defer func() {
		s.answers.setActive(false)
		for _, sub := range subs {
			_ = sub.Unsubscribe()
		}
	}()
	for _, t := range graphChangeTypes {
		subject, err := events.SubjectOf(t)
		if err != nil {
			return err
		}
		sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
			var ref struct {
				Namespace string `json:"namespace"`
			}
			if json.Unmarshal(m.Data, &ref) != nil || ref.Namespace == "" {
				s.answers.setActive(true) // unreadable: drop everything
				return
			}
			s.answers.invalidate(ref.Namespace)
		})
		if err != nil {
			return fmt.Errorf("watch %s: %w", subject, err)
		}
		subs = append(subs, sub)
	}
	// Only once the server has the subscriptions can no change go unseen.
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("watch graph changes: %w", err)
	}
	s.answers.setActive(true)
	<-ctx.Done()
	return nil
}
