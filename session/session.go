package session

import (
	"fmt"
	"slices"
	"sort"
	"sync"
)

// State is the session's lifecycle state.
type State string

// The two states: a new session waits for an admin to initialize it.
const (
	StateWaiting State = "waiting"
	StateActive  State = "active"
)

// Session is the live graph plus presence. All methods are safe for
// concurrent use.
type Session struct {
	mu     sync.Mutex
	nodes  map[string]*Node
	users  map[string]struct{}
	state  State
	gen    uint64 // bumped on every change to what a save records
	seq    uint64 // bumped on every event
	subs   map[*Subscription]struct{}
	notify chan struct{}
	fenced string // why edits are refused; "" while they are not
}

// New returns an empty session in state waiting.
func New() *Session {
	return &Session{
		nodes:  make(map[string]*Node),
		users:  make(map[string]struct{}),
		state:  StateWaiting,
		subs:   make(map[*Subscription]struct{}),
		notify: make(chan struct{}, 1),
	}
}

// FromGraph returns a session holding g; an initialized graph starts active.
func FromGraph(g *Graph) *Session {
	s := New()
	for _, n := range g.Nodes {
		s.nodes[n.ID] = n
	}
	if g.Initialized {
		s.state = StateActive
	}
	return s
}

// Changed is signalled (without blocking, coalesced) after every change that
// a save records. The saver is its one reader.
func (s *Session) Changed() <-chan struct{} { return s.notify }

// Snapshot returns the graph as of one instant: nodes sorted by id, shared
// with the live graph (they are immutable), and the change generation.
func (s *Session) Snapshot() *Graph {
	s.mu.Lock()
	nodes := make([]*Node, 0, len(s.nodes))
	for _, n := range s.nodes {
		nodes = append(nodes, n)
	}
	g := &Graph{Initialized: s.state == StateActive, Gen: s.gen}
	s.mu.Unlock()
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].ID < nodes[j].ID })
	g.Nodes = nodes
	return g
}

// Gen returns the change generation: it grows with every recorded change.
func (s *Session) Gen() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// State returns the current state.
func (s *Session) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// NodeCount returns the number of nodes.
func (s *Session) NodeCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.nodes)
}

// Users returns the users online, sorted.
func (s *Session) Users() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.users))
	for u := range s.users {
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}

// Get returns the node with id.
func (s *Session) Get(id string) (*Node, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[id]
	if !ok {
		return nil, fmt.Errorf("node %q: %w", truncate(id), ErrNotFound)
	}
	return n, nil
}

// List returns every node sorted by id (shared, immutable values).
func (s *Session) List() []*Node { return s.Snapshot().Nodes }

// Fence makes the session refuse every edit from now on, with an error
// wrapping ErrFenced that quotes reason (who holds the session now), and
// tells every subscriber with an EventFenced event. Reads, presence and
// subscriptions go on. Only the first call counts.
func (s *Session) Fence(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fenced != "" {
		return
	}
	s.fenced = reason
	s.publishLocked(Event{Type: EventFenced, Reason: reason})
}

// Fenced returns why the session refuses edits, or "".
func (s *Session) Fenced() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fenced
}

func (s *Session) fencedLocked() error {
	if s.fenced == "" {
		return nil
	}
	return fmt.Errorf("this server no longer holds the session and refuses edits; send them to the server that does (%s): %w", s.fenced, ErrFenced)
}

// Init moves the session from waiting to active.
func (s *Session) Init() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fencedLocked(); err != nil {
		return err
	}
	if s.state == StateActive {
		return fmt.Errorf("session is already active: %w", ErrConflict)
	}
	s.state = StateActive
	s.changedLocked()
	s.publishLocked(Event{Type: EventState, State: StateActive})
	return nil
}

// Put creates or replaces node id and returns the stored node. The node
// keeps in.Data itself, not a copy: the caller must not change it later
// (a copy of a 64 MiB node per PUT would double the memory of uploads).
func (s *Session) Put(a Actor, id string, in NodeInput) (*Node, error) {
	if err := ValidID(id); err != nil {
		return nil, err
	}
	if in.Owner == "" {
		in.Owner = Common
	}
	if err := validType(in.Type); err != nil {
		return nil, err
	}
	if err := validOwner(in.Owner); err != nil {
		return nil, err
	}
	if err := validDeps(in.Deps); err != nil {
		return nil, err
	}
	if slices.Contains(in.Deps, id) {
		return nil, fmt.Errorf("node %q depends on itself: %w", id, ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fencedLocked(); err != nil {
		return nil, err
	}
	if !a.Admin && s.state != StateActive {
		return nil, fmt.Errorf("session is waiting for init: only an admin may put nodes: %w", ErrAdminOnly)
	}
	if err := s.mayEditLocked(a, id); err != nil {
		return nil, err
	}
	if !a.Admin && in.Owner != Common && in.Owner != a.User {
		return nil, fmt.Errorf("node %q: only an admin may give a node to user %q: %w", id, in.Owner, ErrAdminOnly)
	}
	n := &Node{
		ID:      id,
		Type:    in.Type,
		Owner:   in.Owner,
		Deps:    slices.Clone(in.Deps),
		Data:    in.Data, // owned from now on (see NodeInput)
		Version: 1,
	}
	if n.Deps == nil {
		n.Deps = []string{}
	}
	if n.Data == nil {
		n.Data = []byte{}
	}
	if old, ok := s.nodes[id]; ok {
		n.Version = old.Version + 1
	}
	s.nodes[id] = n
	s.changedLocked()
	s.publishLocked(Event{Type: EventPut, Node: metaOf(n)})
	return n, nil
}

// Delete removes node id and its id from every other node's deps.
func (s *Session) Delete(a Actor, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fencedLocked(); err != nil {
		return err
	}
	if _, ok := s.nodes[id]; !ok {
		return fmt.Errorf("node %q: %w", truncate(id), ErrNotFound)
	}
	if err := s.mayEditLocked(a, id); err != nil {
		return err
	}
	delete(s.nodes, id)
	s.publishLocked(Event{Type: EventDelete, ID: id})
	ids := make([]string, 0, len(s.nodes))
	for oid, n := range s.nodes {
		if slices.Contains(n.Deps, id) {
			ids = append(ids, oid)
		}
	}
	sort.Strings(ids)
	for _, oid := range ids {
		old := s.nodes[oid]
		n := *old
		n.Deps = slices.DeleteFunc(slices.Clone(old.Deps), func(d string) bool { return d == id })
		n.Version++
		s.nodes[oid] = &n
		s.publishLocked(Event{Type: EventPut, Node: metaOf(&n)})
	}
	s.changedLocked()
	return nil
}

// SetOwner changes the owner of node id.
func (s *Session) SetOwner(a Actor, id, owner string) (*Node, error) {
	if owner == "" {
		owner = Common
	}
	if err := validOwner(owner); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fencedLocked(); err != nil {
		return nil, err
	}
	old, ok := s.nodes[id]
	if !ok {
		return nil, fmt.Errorf("node %q: %w", truncate(id), ErrNotFound)
	}
	if err := s.mayEditLocked(a, id); err != nil {
		return nil, err
	}
	if !a.Admin && owner != Common && owner != a.User {
		return nil, fmt.Errorf("node %q: only an admin may give a node to user %q: %w", id, owner, ErrAdminOnly)
	}
	if old.Owner == owner {
		return old, nil
	}
	n := *old
	n.Owner = owner
	n.Version++
	s.nodes[id] = &n
	s.changedLocked()
	s.publishLocked(Event{Type: EventPut, Node: metaOf(&n)})
	return &n, nil
}

// mayEditLocked checks that a may change node id (which may not exist yet).
func (s *Session) mayEditLocked(a Actor, id string) error {
	if a.Admin {
		return nil
	}
	if old, ok := s.nodes[id]; ok && old.Owner != Common && old.Owner != a.User {
		return fmt.Errorf("node %q is owned by %q: %w", id, old.Owner, ErrForbidden)
	}
	return nil
}

// Join marks user online. It fails with ErrConflict if user already is.
func (s *Session) Join(user string) error {
	if err := ValidUser(user); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, on := s.users[user]; on {
		return fmt.Errorf("user %q is already online: %w", user, ErrConflict)
	}
	s.users[user] = struct{}{}
	s.publishLocked(Event{Type: EventJoin, User: user})
	return nil
}

// Leave marks user offline and returns every node user owned to Common
// (unless the session is fenced). It reports how many nodes changed owner.
func (s *Session) Leave(user string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, on := s.users[user]; !on {
		return 0
	}
	delete(s.users, user)
	s.publishLocked(Event{Type: EventLeave, User: user})
	if s.fenced != "" {
		return 0 // a fenced session changes no owners: nothing could save it
	}
	ids := make([]string, 0)
	for id, n := range s.nodes {
		if n.Owner == user {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		n := *s.nodes[id]
		n.Owner = Common
		n.Version++
		s.nodes[id] = &n
		s.publishLocked(Event{Type: EventPut, Node: metaOf(&n)})
	}
	if len(ids) > 0 {
		s.changedLocked()
	}
	return len(ids)
}

func (s *Session) changedLocked() {
	s.gen++
	select {
	case s.notify <- struct{}{}:
	default:
	}
}
