# capture.py — a one-shot raw HTTP listener that saves one request's body and
# Content-Type exactly as the client sent them (the fixtures in this folder).
# The two captures were made with curl 7.88.1 (x.npy: a (1,2,3,4) float32
# array, np.arange(24) * 0.5 - 3; request.json: one line of JSON):
#   python3 capture.py 9880 curl_json_npy &
#   curl -F request=@request.json -F input=@x.npy http://127.0.0.1:9880/
#   python3 capture.py 9877 curl_fields &
#   curl -F 'name=plain value' -F 'empty=' \
#        -F 'weights=@x.npy;type=application/octet-stream;filename=w e"ird.npy' http://127.0.0.1:9877/
import socket, sys
port, out = int(sys.argv[1]), sys.argv[2]
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port)); s.listen(1)
c, _ = s.accept()
data = b""
while b"\r\n\r\n" not in data:
    data += c.recv(65536)
head, body = data.split(b"\r\n\r\n", 1)
headers = {k.strip().lower(): v.strip() for k, v in (l.split(b":", 1) for l in head.split(b"\r\n")[1:])}
if headers.get(b"expect") == b"100-continue":
    c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
n = int(headers[b"content-length"])
while len(body) < n:
    body += c.recv(65536)
c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"); c.close()
open(out + ".body", "wb").write(body)
open(out + ".content-type", "wb").write(headers[b"content-type"] + b"\n")
