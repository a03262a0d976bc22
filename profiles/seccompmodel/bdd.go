package seccompmodel

// A reduced ordered binary decision diagram over the 6×64 bits of a
// syscall's arguments: argument 0's bit 63 first, argument 5's bit 0 last.
// Every set of argument vectors the rule language can describe (and every
// union, intersection and complement of them) has one canonical diagram, so
// set equality is node identity and inclusion is an empty difference.

type ref int32

const (
	bFalse ref = 0
	bTrue  ref = 1
	// leaf is the variable of the two terminals: after every real one.
	leaf = 6 * 64
)

type bnode struct {
	v      uint16
	lo, hi ref
}

type bdd struct {
	nodes  []bnode
	unique map[bnode]ref
	memo   map[[3]ref]ref
}

func newBDD() *bdd {
	return &bdd{
		nodes:  []bnode{{v: leaf}, {v: leaf}},
		unique: make(map[bnode]ref, 256),
		memo:   make(map[[3]ref]ref, 256),
	}
}

// variable numbers the bit of an argument.
func variable(idx uint8, bit int) uint16 { return uint16(int(idx)*64 + 63 - bit) }

func (b *bdd) mk(v uint16, lo, hi ref) ref {
	if lo == hi {
		return lo
	}
	n := bnode{v, lo, hi}
	if r, ok := b.unique[n]; ok {
		return r
	}
	r := ref(len(b.nodes))
	b.nodes = append(b.nodes, n)
	b.unique[n] = r
	return r
}

const (
	opAnd ref = iota
	opOr
	opNot
)

func (b *bdd) and(x, y ref) ref {
	switch {
	case x == bFalse || y == bFalse:
		return bFalse
	case x == bTrue:
		return y
	case y == bTrue || x == y:
		return x
	}
	if x > y {
		x, y = y, x
	}
	key := [3]ref{opAnd, x, y}
	if r, ok := b.memo[key]; ok {
		return r
	}
	v, xl, xh, yl, yh := b.split(x, y)
	r := b.mk(v, b.and(xl, yl), b.and(xh, yh))
	b.memo[key] = r
	return r
}

func (b *bdd) or(x, y ref) ref {
	switch {
	case x == bTrue || y == bTrue:
		return bTrue
	case x == bFalse:
		return y
	case y == bFalse || x == y:
		return x
	}
	if x > y {
		x, y = y, x
	}
	key := [3]ref{opOr, x, y}
	if r, ok := b.memo[key]; ok {
		return r
	}
	v, xl, xh, yl, yh := b.split(x, y)
	r := b.mk(v, b.or(xl, yl), b.or(xh, yh))
	b.memo[key] = r
	return r
}

func (b *bdd) not(x ref) ref {
	switch x {
	case bFalse:
		return bTrue
	case bTrue:
		return bFalse
	}
	key := [3]ref{opNot, x, 0}
	if r, ok := b.memo[key]; ok {
		return r
	}
	n := b.nodes[x]
	r := b.mk(n.v, b.not(n.lo), b.not(n.hi))
	b.memo[key] = r
	return r
}

// split returns the top variable of x and y and both cofactors of each.
func (b *bdd) split(x, y ref) (v uint16, xl, xh, yl, yh ref) {
	nx, ny := b.nodes[x], b.nodes[y]
	v = min(nx.v, ny.v)
	xl, xh, yl, yh = x, x, y, y
	if nx.v == v {
		xl, xh = nx.lo, nx.hi
	}
	if ny.v == v {
		yl, yh = ny.lo, ny.hi
	}
	return v, xl, xh, yl, yh
}

// subset reports whether x ⊆ y.
func (b *bdd) subset(x, y ref) bool { return b.and(x, b.not(y)) == bFalse }

// cond builds the set of argument vectors a condition accepts on an ABI of
// the given width.
func (b *bdd) cond(c cond, bits int) ref {
	m := widthMask(bits)
	v := c.a & m
	switch c.op {
	case opEQ:
		return b.eq(c.idx, v, m, bits)
	case opNE:
		return b.not(b.eq(c.idx, v, m, bits))
	case opMaskedEQ:
		return b.eq(c.idx, c.b&v, v, bits)
	case opLT:
		return b.less(c.idx, v, false, bits)
	case opLE:
		return b.less(c.idx, v, true, bits)
	case opGT:
		return b.not(b.less(c.idx, v, true, bits))
	}
	return b.not(b.less(c.idx, v, false, bits)) // opGE
}

// eq is (arg & mask) == datum, datum within mask.
func (b *bdd) eq(idx uint8, datum, mask uint64, bits int) ref {
	r := bTrue
	for bit := 0; bit < bits; bit++ {
		if mask&(1<<bit) == 0 {
			continue
		}
		if datum&(1<<bit) != 0 {
			r = b.mk(variable(idx, bit), bFalse, r)
		} else {
			r = b.mk(variable(idx, bit), r, bFalse)
		}
	}
	return r
}

// less is arg < v (orEqual: arg <= v) on the low bits of the argument.
func (b *bdd) less(idx uint8, v uint64, orEqual bool, bits int) ref {
	r := bFalse // the bits below compare equal: not less
	if orEqual {
		r = bTrue
	}
	for bit := 0; bit < bits; bit++ {
		if v&(1<<bit) != 0 {
			r = b.mk(variable(idx, bit), bTrue, r) // arg's bit 0 where v has 1: less
		} else {
			r = b.mk(variable(idx, bit), r, bFalse) // arg's bit 1 where v has 0: greater
		}
	}
	return r
}

// box is the AND of conditions.
func (b *bdd) box(conds []cond, bits int) ref {
	r := bTrue
	for _, c := range conds {
		r = b.and(r, b.cond(c, bits))
	}
	return r
}

// boxes is the OR of boxes.
func (b *bdd) boxes(bs [][]cond, bits int) ref {
	r := bFalse
	for _, box := range bs {
		r = b.or(r, b.box(box, bits))
	}
	return r
}

// cube is one path of a diagram: the bits it fixes, per argument.
type cube struct {
	mask, val [6]uint64
}

// conds renders a cube as conditions, one per argument it constrains:
// EQ where every bit of the ABI is fixed, MASKED_EQ otherwise.
func (c cube) conds(bits int) []cond {
	var cs []cond
	for i := range 6 {
		switch {
		case c.mask[i] == 0:
		case c.mask[i] == widthMask(bits):
			cs = append(cs, cond{idx: uint8(i), op: opEQ, a: c.val[i]})
		default:
			cs = append(cs, cond{idx: uint8(i), op: opMaskedEQ, a: c.mask[i], b: c.val[i]})
		}
	}
	return cs
}

// cubes lists the paths to true: all of them (true), or the first limit
// (false) when there are more.
func (b *bdd) cubes(x ref, limit int) ([]cube, bool) {
	var out []cube
	var cur cube
	var walk func(r ref) bool
	walk = func(r ref) bool {
		switch r {
		case bFalse:
			return true
		case bTrue:
			if len(out) == limit {
				return false
			}
			out = append(out, cur)
			return true
		}
		n := b.nodes[r]
		idx, bit := n.v/64, 63-n.v%64
		saveM, saveV := cur.mask[idx], cur.val[idx]
		cur.mask[idx] |= 1 << bit
		if !walk(n.lo) {
			return false
		}
		cur.val[idx] |= 1 << bit
		ok := walk(n.hi)
		cur.mask[idx], cur.val[idx] = saveM, saveV
		return ok
	}
	return out, walk(x)
}

// witness returns one argument vector in x (x must not be false), and
// which arguments the diagram constrains on the way to it.
func (b *bdd) witness(x ref) (args [6]uint64, constrained [6]bool) {
	for x != bTrue {
		n := b.nodes[x]
		idx, bit := n.v/64, 63-n.v%64
		constrained[idx] = true
		if n.lo != bFalse {
			x = n.lo
		} else {
			args[idx] |= 1 << bit
			x = n.hi
		}
	}
	return args, constrained
}
