"""Child process that runs one vtracer trace: PNG bytes on stdin, JSON keyword arguments in argv[1], SVG on
stdout. A separate process so that a time limit can really stop the work (a thread cannot be killed)."""
import json
import sys

import vtracer


def main() -> int:
    kwargs = json.loads(sys.argv[1])
    svg = vtracer.convert_raw_image_to_svg(sys.stdin.buffer.read(), img_format="png", **kwargs)
    sys.stdout.write(svg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
