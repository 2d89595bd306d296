//! The board: UART0 (the station's cable), the latch GPIO lines, the
//! semihosting file that stands for the flash pages in emulation, and the
//! stack high-water mark.
//!
//! Register addresses are the TI LM3S6965's (QEMU `lm3s6965evb`); the pin map
//! for a real STM32F103 board is in `docs/box-hardware.md`.

use core::ptr::{read_volatile, write_volatile};

use cortex_m_semihosting::{hprintln, nr, syscall};

const UART0: usize = 0x4000_C000;
const UART_DR: usize = 0x000;
const UART_FR: usize = 0x018;
const FR_RXFE: u32 = 1 << 4;
const FR_TXFF: u32 = 1 << 5;
const UART_IMSC: usize = 0x038;
const IM_RX: u32 = 1 << 4;
const IM_RT: u32 = 1 << 6;
/// UART0's interrupt number on the LM3S6965 (on the STM32F103: USART1, 37).
const UART0_IRQ: u32 = 5;
const NVIC_ISER0: usize = 0xE000_E100;
const NVIC_ICPR0: usize = 0xE000_E280;

fn reg(addr: usize) -> *mut u32 {
    addr as *mut u32
}

/// UART0, polled (the box only talks while it is on the station's cable).
pub struct Uart;

impl Uart {
    /// Lets UART0's receive interrupt wake the core from `wfi`. Interrupts stay
    /// masked (PRIMASK): no handler runs, the pending line only ends the sleep.
    pub fn init() -> Uart {
        cortex_m::interrupt::disable();
        // SAFETY: UART0's interrupt mask and the NVIC's enable register.
        unsafe {
            write_volatile(reg(UART0 + UART_IMSC), IM_RX | IM_RT);
            write_volatile(reg(NVIC_ISER0), 1 << UART0_IRQ);
        }
        Uart
    }

    /// Sleeps until a byte is received (returns at once if one is waiting).
    pub fn wait(&mut self) {
        // SAFETY: clears UART0's pending bit in the NVIC, then reads the flags.
        unsafe {
            write_volatile(reg(NVIC_ICPR0), 1 << UART0_IRQ);
            if read_volatile(reg(UART0 + UART_FR)) & FR_RXFE != 0 {
                cortex_m::asm::wfi();
            }
        }
    }

    /// The next received byte, if any.
    pub fn read(&mut self) -> Option<u8> {
        // SAFETY: UART0's flag and data registers, always mapped on this part.
        unsafe {
            if read_volatile(reg(UART0 + UART_FR)) & FR_RXFE != 0 {
                None
            } else {
                Some(read_volatile(reg(UART0 + UART_DR)) as u8)
            }
        }
    }

    /// Sends bytes (blocks while the transmit FIFO is full).
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            // SAFETY: as above.
            unsafe {
                while read_volatile(reg(UART0 + UART_FR)) & FR_TXFF != 0 {}
                write_volatile(reg(UART0 + UART_DR), u32::from(b));
            }
        }
    }
}

const SYSCTL_RCGC2: usize = 0x400F_E108;
const GPIOB: usize = 0x4000_5000;
const GPIO_DATA_ALL: usize = 0x3FC;
const GPIO_DIR: usize = 0x400;
const GPIO_DEN: usize = 0x51C;

/// The six latch lines: PB0..PB5, one per compartment, active high.
pub struct Latches;

impl Latches {
    /// Clocks port B and makes PB0..PB5 outputs, all low.
    pub fn init() -> Latches {
        // SAFETY: system-control and GPIO port B registers of this part.
        unsafe {
            let r = read_volatile(reg(SYSCTL_RCGC2));
            write_volatile(reg(SYSCTL_RCGC2), r | 1 << 1);
            write_volatile(reg(GPIOB + GPIO_DATA_ALL), 0);
            write_volatile(reg(GPIOB + GPIO_DIR), 0x3F);
            write_volatile(reg(GPIOB + GPIO_DEN), 0x3F);
        }
        Latches
    }

    /// Pulses compartment `i`'s latch line (on hardware: 200 ms through the
    /// driver; in emulation the event is logged on the semihosting console).
    pub fn pulse(&mut self, i: u8) {
        if i >= 6 {
            return;
        }
        // SAFETY: as above.
        unsafe {
            write_volatile(reg(GPIOB + GPIO_DATA_ALL), 1 << i);
        }
        hprintln!("LATCH compartment={} open", i);
        // SAFETY: as above.
        unsafe {
            write_volatile(reg(GPIOB + GPIO_DATA_ALL), 0);
        }
    }
}

/// Byte-addressed non-volatile storage ("flash pages").
pub trait Flash {
    /// Reads `buf.len()` bytes at `offset`; false if not all could be read.
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> bool;
    /// Writes `data` at `offset`, durably; false on failure.
    fn write(&mut self, offset: u32, data: &[u8]) -> bool;
}

/// A host file opened through semihosting, standing for the flash pages.
pub struct SemihostingFlash {
    handle: usize,
}

/// Opens `name` (NUL-terminated) with the semihosting mode `mode`.
fn sh_open(name: &[u8], mode: usize) -> Option<usize> {
    // SAFETY: SYS_OPEN with a NUL-terminated name and its length (without the NUL).
    let h = unsafe { syscall!(OPEN, name.as_ptr(), mode, name.len() - 1) };
    (h != usize::MAX).then_some(h)
}

impl SemihostingFlash {
    /// Opens (creating if absent) the flash file `name` (NUL-terminated).
    pub fn open(name: &[u8]) -> Option<SemihostingFlash> {
        let handle = sh_open(name, nr::open::RW_BINARY)
            .or_else(|| sh_open(name, nr::open::RW_TRUNC_BINARY))?;
        Some(SemihostingFlash { handle })
    }

    /// True if the host file `name` (NUL-terminated) exists.
    pub fn exists(name: &[u8]) -> bool {
        match sh_open(name, nr::open::R_BINARY) {
            Some(h) => {
                // SAFETY: closes the handle just opened.
                unsafe { syscall!(CLOSE, h) };
                true
            }
            None => false,
        }
    }

    fn seek(&mut self, offset: u32) -> bool {
        // SAFETY: SYS_SEEK on our open handle.
        unsafe { syscall!(SEEK, self.handle, offset as usize) == 0 }
    }
}

impl Flash for SemihostingFlash {
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> bool {
        if !self.seek(offset) {
            return false;
        }
        // SAFETY: SYS_READ into a buffer we own, of its length; returns the bytes NOT read.
        unsafe { syscall!(READ, self.handle, buf.as_mut_ptr(), buf.len()) == 0 }
    }

    fn write(&mut self, offset: u32, data: &[u8]) -> bool {
        if !self.seek(offset) {
            return false;
        }
        // SAFETY: SYS_WRITE from a buffer we own; returns the bytes NOT written.
        unsafe { syscall!(WRITE, self.handle, data.as_ptr(), data.len()) == 0 }
    }
}

extern "C" {
    static mut __sheap: u32;
}

const PAINT: u32 = 0xC0DE_C0DE;

/// Paints the free RAM between the end of the statics and the current stack
/// pointer (less a margin), so [`stack_high_water`] can find how deep the
/// stack has ever been.
#[inline(never)]
pub fn paint_stack() {
    let sp = cortex_m::register::msp::read() as usize - 64;
    // SAFETY: `__sheap` is the first free word after .bss/.data (cortex-m-rt);
    // everything from there to below the live stack is unused.
    unsafe {
        let mut p = core::ptr::addr_of_mut!(__sheap) as usize;
        while p < sp {
            write_volatile(p as *mut u32, PAINT);
            p += 4;
        }
    }
}

/// Bytes of stack ever used (from the top of RAM), found by the paint.
pub fn stack_high_water() -> usize {
    extern "C" {
        static _stack_start: u32;
    }
    // SAFETY: reads the painted region only (see `paint_stack`).
    unsafe {
        let top = core::ptr::addr_of!(_stack_start) as usize;
        let mut p = core::ptr::addr_of_mut!(__sheap) as usize;
        while p < top && read_volatile(p as *const u32) == PAINT {
            p += 4;
        }
        top - p
    }
}
