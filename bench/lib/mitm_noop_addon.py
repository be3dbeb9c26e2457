# A mitmproxy addon that does nothing: mitmproxy's own work per request is what is measured.


class Noop:
    def request(self, flow):
        pass

    def response(self, flow):
        pass


addons = [Noop()]
