// Package expansion expands $(VAR) references in container env values,
// command, args and subPathExpr, exactly as the kubelet does.
//
// It is a port of the kubelet's third_party/forked/golang/expansion (itself
// forked from Go's os.Expand) without changes to the syntax:
//
//   - $(NAME) is replaced by the value of NAME when the mapping knows it;
//     an unknown reference is left as written;
//   - $$ is an escaped $, so $$(NAME) yields the literal $(NAME);
//   - an unterminated $(NAME is left as written, and a $ followed by
//     anything but ( or $ is kept.
package expansion

import (
	"strings"
	"unicode/utf8"
)

const (
	operator        = '$'
	referenceOpener = '('
	referenceCloser = ')'
)

// syntaxWrap returns the input string wrapped by the expansion syntax.
func syntaxWrap(input string) string {
	return string(operator) + string(referenceOpener) + input + string(referenceCloser)
}

// MappingFuncFor returns a mapping function for use with Expand that
// looks a name up in each context in turn and returns the reference
// unchanged, $(NAME), when no context has it.
func MappingFuncFor(context ...map[string]string) func(string) string {
	return func(input string) string {
		for _, vars := range context {
			if val, ok := vars[input]; ok {
				return val
			}
		}
		return syntaxWrap(input)
	}
}

// Expand replaces variable references in input using mapping to resolve
// the values of variables.
func Expand(input string, mapping func(string) string) string {
	var buf strings.Builder
	checkpoint := 0
	for cursor := 0; cursor < len(input); cursor++ {
		if input[cursor] == operator && cursor+1 < len(input) {
			// Copy the portion of the input since the last checkpoint.
			buf.WriteString(input[checkpoint:cursor])

			// Attempt to read the variable name as defined by the syntax.
			read, isVar, advance := tryReadVariableName(input[cursor+1:])
			if isVar {
				buf.WriteString(mapping(read))
			} else {
				buf.WriteString(read)
			}

			// Advance the cursor past the bytes consumed, and the
			// checkpoint after them.
			cursor += advance
			checkpoint = cursor + 1
		}
	}
	return buf.String() + input[checkpoint:]
}

// tryReadVariableName attempts to read a variable name from input, which
// follows an operator. It returns what was read, whether it is a variable
// name to map, and the number of bytes consumed.
func tryReadVariableName(input string) (string, bool, int) {
	r, size := utf8.DecodeRuneInString(input)
	switch r {
	case operator:
		// Escaped operator; return it.
		return input[0:size], false, size
	case referenceOpener:
		// Scan to the expression closer.
		for i := 1; i < len(input); i++ {
			if input[i] == referenceCloser {
				return input[1:i], true, i + 1
			}
		}
		// Incomplete reference; return it.
		return string(operator) + string(referenceOpener), false, 1
	default:
		// Not the beginning of an expression: return the operator and
		// the rune after it.
		return string(operator) + string(r), false, size
	}
}
