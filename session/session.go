package session

import (
	"fmt"
	"slices"
	"sort"
	"strings"
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
	mu    sync.Mutex
	nodes map[string]*Node
	// sorted is the last Snapshot's nodes in id order (never modified:
	// snapshots share it), dirty the ids set or deleted since (also while
	// a Snapshot sorts, for the sort it marked with sorting); nil sorted:
	// the next Snapshot sorts every node.
	sorted  []*Node
	dirty   map[string]struct{}
	sorting *int
	users   map[string]struct{}
	state   State
	gen     uint64 // bumped on every change to what a save records
	seq     uint64 // bumped on every event
	subs    map[*Subscription]struct{}
	notify  chan struct{}
	fenced  string // why edits are refused; "" while they are not
	// journal makes changes durable before they are acknowledged (nil:
	// none); lsn is the last change it recorded.
	journal Journal
	lsn     uint64
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
		s.setNode(n.ID, n)
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
	g := &Graph{Initialized: s.state == StateActive, Gen: s.gen, JournalLSN: s.lsn}
	if s.sorted == nil {
		// Sort outside the lock; the edits made meanwhile are noted in
		// dirty, for the next Snapshot to patch in.
		nodes := make([]*Node, 0, len(s.nodes))
		for _, n := range s.nodes {
			nodes = append(nodes, n)
		}
		mine := new(int)
		s.sorting, s.dirty = mine, map[string]struct{}{}
		s.mu.Unlock()
		slices.SortFunc(nodes, func(a, b *Node) int { return strings.Compare(a.ID, b.ID) })
		s.mu.Lock()
		// Unless too many edits came in (dirty dropped) or another
		// Snapshot sorted since (its dirty is from its own start).
		if s.sorting == mine && s.dirty != nil {
			s.sorted = nodes
		}
		s.mu.Unlock()
		g.Nodes = nodes
		return g
	}
	defer s.mu.Unlock()
	if len(s.dirty) > 0 {
		s.sorted = s.patchSorted()
		clear(s.dirty)
	}
	g.Nodes = s.sorted
	return g
}

// patchSorted returns s.sorted with the dirty ids' nodes replaced, added
// or removed: a merge of the sorted dirty ids into it, with a lookup per
// dirty id only. s.mu must be held.
func (s *Session) patchSorted() []*Node {
	ids := make([]string, 0, len(s.dirty))
	for id := range s.dirty {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]*Node, 0, len(s.nodes))
	old := s.sorted
	for _, id := range ids {
		k, found := slices.BinarySearchFunc(old, id, func(n *Node, id string) int { return strings.Compare(n.ID, id) })
		out = append(out, old[:k]...)
		if found {
			k++
		}
		old = old[k:]
		if n, ok := s.nodes[id]; ok {
			out = append(out, n)
		}
	}
	return append(out, old...)
}

// setNode and deleteNode change the graph, noting the id for Snapshot.
func (s *Session) setNode(id string, n *Node) {
	s.nodes[id] = n
	s.touch(id)
}

func (s *Session) deleteNode(id string) {
	delete(s.nodes, id)
	s.touch(id)
}

func (s *Session) touch(id string) {
	if s.dirty == nil {
		return
	}
	if len(s.dirty) > len(s.nodes)/8+64 { // cheaper to sort afresh
		s.sorted, s.dirty = nil, nil
		return
	}
	s.dirty[id] = struct{}{}
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
	return s.settle(s.init())
}

func (s *Session) init() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.editableLocked(); err != nil {
		return 0, err
	}
	if s.state == StateActive {
		return 0, fmt.Errorf("session is already active: %w", ErrConflict)
	}
	lsn := s.logLocked(Op{Kind: OpInit})
	s.state = StateActive
	s.changedLocked()
	s.publishLocked(Event{Type: EventState, State: StateActive})
	return lsn, nil
}

// Put creates or replaces node id and returns the stored node. The node
// keeps in.Data itself, not a copy: the caller must not change it later
// (a copy of a 64 MiB node per PUT would double the memory of uploads).
func (s *Session) Put(a Actor, id string, in NodeInput) (*Node, error) {
	n, lsn, err := s.put(a, id, in)
	if err = s.settle(lsn, err); err != nil {
		return nil, err
	}
	return n, nil
}

func (s *Session) put(a Actor, id string, in NodeInput) (*Node, uint64, error) {
	if err := ValidID(id); err != nil {
		return nil, 0, err
	}
	if in.Owner == "" {
		in.Owner = Common
	}
	if err := validType(in.Type); err != nil {
		return nil, 0, err
	}
	if err := validOwner(in.Owner); err != nil {
		return nil, 0, err
	}
	if err := validDeps(in.Deps); err != nil {
		return nil, 0, err
	}
	if slices.Contains(in.Deps, id) {
		return nil, 0, fmt.Errorf("node %q depends on itself: %w", id, ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.editableLocked(); err != nil {
		return nil, 0, err
	}
	if !a.Admin && s.state != StateActive {
		return nil, 0, fmt.Errorf("session is waiting for init: only an admin may put nodes: %w", ErrAdminOnly)
	}
	if err := s.mayEditLocked(a, id); err != nil {
		return nil, 0, err
	}
	if !a.Admin && in.Owner != Common && in.Owner != a.User {
		return nil, 0, fmt.Errorf("node %q: only an admin may give a node to user %q: %w", id, in.Owner, ErrAdminOnly)
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
	lsn := s.logLocked(Op{Kind: OpPut, Node: n})
	s.setNode(id, n)
	s.changedLocked()
	s.publishLocked(Event{Type: EventPut, Node: metaOf(n)})
	return n, lsn, nil
}

// Delete removes node id and its id from every other node's deps.
func (s *Session) Delete(a Actor, id string) error {
	return s.settle(s.delete(a, id))
}

func (s *Session) delete(a Actor, id string) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.editableLocked(); err != nil {
		return 0, err
	}
	if _, ok := s.nodes[id]; !ok {
		return 0, fmt.Errorf("node %q: %w", truncate(id), ErrNotFound)
	}
	if err := s.mayEditLocked(a, id); err != nil {
		return 0, err
	}
	ids := make([]string, 0, len(s.nodes))
	for oid, n := range s.nodes {
		if oid != id && slices.Contains(n.Deps, id) {
			ids = append(ids, oid)
		}
	}
	sort.Strings(ids)
	op := Op{Kind: OpDelete, ID: id}
	for _, oid := range ids {
		op.Deps = append(op.Deps, DepUpdate{ID: oid, Version: s.nodes[oid].Version + 1})
	}
	lsn := s.logLocked(op)
	s.deleteNode(id)
	s.publishLocked(Event{Type: EventDelete, ID: id})
	for _, u := range op.Deps {
		old := s.nodes[u.ID]
		n := *old
		n.Deps = slices.DeleteFunc(slices.Clone(old.Deps), func(d string) bool { return d == id })
		n.Version = u.Version
		s.setNode(u.ID, &n)
		s.publishLocked(Event{Type: EventPut, Node: metaOf(&n)})
	}
	s.changedLocked()
	return lsn, nil
}

// SetOwner changes the owner of node id.
func (s *Session) SetOwner(a Actor, id, owner string) (*Node, error) {
	n, lsn, err := s.setOwner(a, id, owner)
	if err = s.settle(lsn, err); err != nil {
		return nil, err
	}
	return n, nil
}

func (s *Session) setOwner(a Actor, id, owner string) (*Node, uint64, error) {
	if owner == "" {
		owner = Common
	}
	if err := validOwner(owner); err != nil {
		return nil, 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.editableLocked(); err != nil {
		return nil, 0, err
	}
	old, ok := s.nodes[id]
	if !ok {
		return nil, 0, fmt.Errorf("node %q: %w", truncate(id), ErrNotFound)
	}
	if err := s.mayEditLocked(a, id); err != nil {
		return nil, 0, err
	}
	if !a.Admin && owner != Common && owner != a.User {
		return nil, 0, fmt.Errorf("node %q: only an admin may give a node to user %q: %w", id, owner, ErrAdminOnly)
	}
	if old.Owner == owner {
		return old, 0, nil
	}
	n := *old
	n.Owner = owner
	n.Version++
	lsn := s.logLocked(Op{Kind: OpOwner, ID: id, Owner: owner, Version: n.Version})
	s.setNode(id, &n)
	s.changedLocked()
	s.publishLocked(Event{Type: EventPut, Node: metaOf(&n)})
	return &n, lsn, nil
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
	n, lsn := s.leave(user)
	_ = s.durable(lsn) // best effort: the next save records the owners anyway
	return n
}

func (s *Session) leave(user string) (int, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, on := s.users[user]; !on {
		return 0, 0
	}
	delete(s.users, user)
	s.publishLocked(Event{Type: EventLeave, User: user})
	if s.editableLocked() != nil {
		return 0, 0 // a fenced session, or a failed journal, changes no owners
	}
	ids := make([]string, 0)
	for id, n := range s.nodes {
		if n.Owner == user {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	var lsn uint64
	for _, id := range ids {
		n := *s.nodes[id]
		n.Owner = Common
		n.Version++
		lsn = s.logLocked(Op{Kind: OpOwner, ID: id, Owner: Common, Version: n.Version})
		s.setNode(id, &n)
		s.publishLocked(Event{Type: EventPut, Node: metaOf(&n)})
	}
	if len(ids) > 0 {
		s.changedLocked()
	}
	return len(ids), lsn
}

func (s *Session) changedLocked() {
	s.gen++
	select {
	case s.notify <- struct{}{}:
	default:
	}
}
