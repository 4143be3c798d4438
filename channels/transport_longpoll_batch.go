package channels

import (
	"bytes"
	"encoding/base64"
	"fmt"
)

// The body of a LongPoll POST (protocol §5.3). With the content type
// application/x-ndjson, which phoenix.js always sends, it is a batch: one
// message per line, a line starting with "[" a V2 JSON text frame and any
// other a V2 binary frame in standard base64. Any other content type makes
// the whole body one text frame (V1 object or V2 array).

// MaxBatchLines is how many lines of one POST are handled; Phoenix ignores
// the lines after the first 100, and phoenix.js never sends more.
const MaxBatchLines = 100

// batchLine is one inbound message of a POST.
type batchLine struct {
	data   []byte
	binary bool
}

// decodeBatch splits a POST body into messages. Empty lines are skipped;
// lines after the first maxLines are not returned but counted in ignored.
// A line that is not valid base64, or whose message is larger than
// maxFrame bytes, fails the whole batch: the caller handles none of it.
func decodeBatch(body []byte, ndjson bool, maxLines int, maxFrame int64) (lines []batchLine, ignored int, err error) {
	if !ndjson {
		if len(bytes.TrimSpace(body)) == 0 {
			return nil, 0, fmt.Errorf("empty message")
		}
		if int64(len(body)) > maxFrame {
			return nil, 0, fmt.Errorf("message of %d bytes is larger than max_frame_size (%d)", len(body), maxFrame)
		}
		return []batchLine{{data: body}}, 0, nil
	}
	n := 0
	for rest := body; len(rest) > 0; {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		n++
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			continue
		}
		if len(lines) == maxLines {
			ignored++
			continue
		}
		if line[0] == '[' {
			if int64(len(line)) > maxFrame {
				return nil, 0, fmt.Errorf("line %d: message of %d bytes is larger than max_frame_size (%d)", n, len(line), maxFrame)
			}
			lines = append(lines, batchLine{data: line})
			continue
		}
		if int64(base64.StdEncoding.DecodedLen(len(line))) > maxFrame+2 {
			return nil, 0, fmt.Errorf("line %d: binary message larger than max_frame_size (%d)", n, maxFrame)
		}
		data, err := base64.StdEncoding.Strict().AppendDecode(nil, line)
		if err != nil {
			return nil, 0, fmt.Errorf("line %d: neither a JSON array nor standard base64: %w", n, err)
		}
		if int64(len(data)) > maxFrame {
			return nil, 0, fmt.Errorf("line %d: binary message of %d bytes is larger than max_frame_size (%d)", n, len(data), maxFrame)
		}
		lines = append(lines, batchLine{data: data, binary: true})
	}
	if len(lines) == 0 {
		return nil, ignored, fmt.Errorf("no message in the batch")
	}
	return lines, ignored, nil
}
