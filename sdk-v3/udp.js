'use strict'

// CSM datagram delivery, for when there is no recorder in the process.

const { counters } = require('./state.js')

let socket

/** One shared, unref'd UDP socket: it never keeps the process alive, and errors are only counted. */
function sendDatagram(json, host, port) {
  if (socket === undefined) {
    socket = require('node:dgram').createSocket('udp4')
    socket.on('error', () => {
      counters.failures++
    })
    socket.unref()
  }
  socket.send(json, port, host, (error) => {
    if (error) counters.failures++
  })
}

module.exports = { sendDatagram }
