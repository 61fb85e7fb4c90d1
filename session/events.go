package session

// Event types streamed to subscribers.
const (
	EventPut    = "node_put"
	EventDelete = "node_deleted"
	EventJoin   = "user_joined"
	EventLeave  = "user_left"
	EventState  = "state"
	// EventFenced: another server took over the session; this one refuses
	// edits from now on (Reason says who holds it).
	EventFenced = "fenced"
)

// NodeMeta is a node without its data.
type NodeMeta struct {
	ID      string   `json:"id"`
	Type    string   `json:"type"`
	Owner   string   `json:"owner"`
	Deps    []string `json:"deps"`
	Version uint64   `json:"version"`
}

// Event is one change to the session, in the order it happened.
type Event struct {
	Seq   uint64    `json:"seq"`
	Type  string    `json:"type"`
	Node  *NodeMeta `json:"node,omitempty"`
	ID    string    `json:"id,omitempty"`
	User  string    `json:"user,omitempty"`
	State State     `json:"state,omitempty"`
	// Reason explains a fenced event.
	Reason string `json:"reason,omitempty"`
}

// Meta returns n without its data.
func (n *Node) Meta() NodeMeta { return *metaOf(n) }

func metaOf(n *Node) *NodeMeta {
	deps := n.Deps
	if deps == nil {
		deps = []string{}
	}
	return &NodeMeta{ID: n.ID, Type: n.Type, Owner: n.Owner, Deps: deps, Version: n.Version}
}

// subscriberBuffer is how many events a subscriber may lag behind before it
// is dropped (its channel closed) rather than slowing every edit.
const subscriberBuffer = 1024

// Subscription receives every event after it was made. C is closed when the
// subscription ends: by Close, or because the reader fell too far behind.
type Subscription struct {
	C chan Event
	s *Session
}

// Subscribe starts a subscription to every later event.
func (s *Session) Subscribe() *Subscription {
	sub := &Subscription{C: make(chan Event, subscriberBuffer), s: s}
	s.mu.Lock()
	s.subs[sub] = struct{}{}
	s.mu.Unlock()
	return sub
}

// Close ends the subscription. It is safe to call more than once.
func (sub *Subscription) Close() {
	sub.s.mu.Lock()
	defer sub.s.mu.Unlock()
	if _, ok := sub.s.subs[sub]; ok {
		delete(sub.s.subs, sub)
		close(sub.C)
	}
}

func (s *Session) publishLocked(e Event) {
	s.seq++
	e.Seq = s.seq
	for sub := range s.subs {
		select {
		case sub.C <- e:
		default: // too slow: drop it so it reconnects and reloads
			delete(s.subs, sub)
			close(sub.C)
		}
	}
}
