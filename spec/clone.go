package spec

import (
	"reflect"
	"sync"
)

// deepCopy returns a deep copy of *v. The runtime-spec types are plain data
// (exported fields, pointers, slices, maps), so a reflective copy is
// complete and stays correct when the spec grows new fields. It writes into
// addressable values in place, so that each pointer, slice and map of the
// input costs one allocation.
func deepCopy[T any](v *T) *T {
	if v == nil {
		return nil
	}
	c := new(T)
	copyInto(reflect.ValueOf(c).Elem(), reflect.ValueOf(v).Elem())
	return c
}

// copyInto sets the addressable dst to a deep copy of src.
func copyInto(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		p := reflect.New(src.Type().Elem())
		copyInto(p.Elem(), src.Elem())
		dst.Set(p)
	case reflect.Struct:
		dst.Set(src) // the scalar fields in one go
		for _, i := range refFields(src.Type()) {
			copyInto(dst.Field(i), src.Field(i))
		}
	case reflect.Slice:
		if src.IsNil() {
			dst.SetZero()
			return
		}
		n := src.Len()
		if n == 0 {
			dst.Set(reflect.MakeSlice(src.Type(), 0, 0))
			return
		}
		dst.SetZero()
		dst.Grow(n)
		dst.SetLen(n)
		if isFlat(src.Type().Elem()) {
			reflect.Copy(dst, src)
			return
		}
		for i := range n {
			copyInto(dst.Index(i), src.Index(i))
		}
	case reflect.Map:
		if src.IsNil() {
			dst.SetZero()
			return
		}
		m := reflect.MakeMapWithSize(src.Type(), src.Len())
		flat := isFlat(src.Type().Elem())
		iter := src.MapRange()
		for iter.Next() {
			if flat {
				m.SetMapIndex(iter.Key(), iter.Value())
				continue
			}
			e := reflect.New(src.Type().Elem()).Elem()
			copyInto(e, iter.Value())
			m.SetMapIndex(iter.Key(), e)
		}
		dst.Set(m)
	case reflect.Interface:
		if src.IsNil() {
			dst.SetZero()
			return
		}
		e := reflect.New(src.Elem().Type()).Elem()
		copyInto(e, src.Elem())
		dst.Set(e)
	default:
		dst.Set(src)
	}
}

// typeInfo is what the copy needs to know about a type, computed once.
type typeInfo struct {
	flat bool  // holds no references
	refs []int // for structs: the fields that hold references
}

var typeInfos sync.Map // reflect.Type -> *typeInfo

func infoOf(t reflect.Type) *typeInfo {
	if v, ok := typeInfos.Load(t); ok {
		return v.(*typeInfo)
	}
	ti := &typeInfo{flat: true}
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
		ti.flat = false
	case reflect.Struct:
		for i := range t.NumField() {
			if !isFlat(t.Field(i).Type) {
				ti.flat = false
				ti.refs = append(ti.refs, i)
			}
		}
	case reflect.Array:
		ti.flat = isFlat(t.Elem())
	}
	typeInfos.Store(t, ti)
	return ti
}

// isFlat reports whether values of t hold no references to copy.
func isFlat(t reflect.Type) bool { return infoOf(t).flat }

// refFields lists the fields of struct type t that hold references.
func refFields(t reflect.Type) []int { return infoOf(t).refs }
