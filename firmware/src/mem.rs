//! Fast `memcpy` / `memclr` for the Cortex-M3.
//!
//! `lockcode` moves its 2632-byte persistent state several times per code
//! entry (a clone for the write-ahead, two serialisations). `compiler_builtins`
//! copies one word per loop turn (about 1 instruction per byte), which was more
//! than half of an entry's instructions. These strong definitions replace its
//! weak `__aeabi_memcpy*` / `__aeabi_memclr*` with 32-byte `ldm`/`stm` blocks
//! (about 0.13 instructions per byte); unaligned copies fall back to bytes.
//! Semantics are those of the ARM run-time ABI (RTABI §4.3.4).

core::arch::global_asm!(
    r#"
    .syntax unified
    .thumb

    .section .text.__aeabi_memcpy,"ax",%progbits
    .global __aeabi_memcpy
    .type __aeabi_memcpy,%function
    .thumb_func
__aeabi_memcpy:
    orr     r3, r0, r1
    lsls    r3, r3, #30
    beq     __aeabi_memcpy4
1:  subs    r2, r2, #1
    blo     2f
    ldrb    r3, [r1], #1
    strb    r3, [r0], #1
    b       1b
2:  bx      lr
    .size __aeabi_memcpy, . - __aeabi_memcpy

    .section .text.__aeabi_memcpy4,"ax",%progbits
    .global __aeabi_memcpy4
    .global __aeabi_memcpy8
    .type __aeabi_memcpy4,%function
    .type __aeabi_memcpy8,%function
    .thumb_func
__aeabi_memcpy4:
    .thumb_func
__aeabi_memcpy8:
    push    {{r4-r9}}
    subs    r2, r2, #32
    blo     2f
1:  ldmia   r1!, {{r3-r9, r12}}
    stmia   r0!, {{r3-r9, r12}}
    subs    r2, r2, #32
    bhs     1b
2:  adds    r2, r2, #32
3:  subs    r2, r2, #4
    blo     4f
    ldr     r3, [r1], #4
    str     r3, [r0], #4
    b       3b
4:  adds    r2, r2, #4
5:  subs    r2, r2, #1
    blo     6f
    ldrb    r3, [r1], #1
    strb    r3, [r0], #1
    b       5b
6:  pop     {{r4-r9}}
    bx      lr
    .size __aeabi_memcpy4, . - __aeabi_memcpy4

    .section .text.__aeabi_memclr,"ax",%progbits
    .global __aeabi_memclr
    .type __aeabi_memclr,%function
    .thumb_func
__aeabi_memclr:
    lsls    r3, r0, #30
    beq     __aeabi_memclr4
    movs    r3, #0
1:  subs    r1, r1, #1
    blo     2f
    strb    r3, [r0], #1
    b       1b
2:  bx      lr
    .size __aeabi_memclr, . - __aeabi_memclr

    .section .text.__aeabi_memclr4,"ax",%progbits
    .global __aeabi_memclr4
    .global __aeabi_memclr8
    .type __aeabi_memclr4,%function
    .type __aeabi_memclr8,%function
    .thumb_func
__aeabi_memclr4:
    .thumb_func
__aeabi_memclr8:
    push    {{r4-r9}}
    movs    r2, #0
    movs    r3, #0
    movs    r4, #0
    movs    r5, #0
    movs    r6, #0
    movs    r7, #0
    movs    r8, #0
    movs    r9, #0
    subs    r1, r1, #32
    blo     2f
1:  stmia   r0!, {{r2-r9}}
    subs    r1, r1, #32
    bhs     1b
2:  adds    r1, r1, #32
3:  subs    r1, r1, #4
    blo     4f
    str     r2, [r0], #4
    b       3b
4:  adds    r1, r1, #4
5:  subs    r1, r1, #1
    blo     6f
    strb    r2, [r0], #1
    b       5b
6:  pop     {{r4-r9}}
    bx      lr
    .size __aeabi_memclr4, . - __aeabi_memclr4
"#
);
